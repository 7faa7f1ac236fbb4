"""The Kafka source (faststream security) and the sinks (aiokafka kwargs) connect alike."""

from __future__ import annotations

import pytest
from faststream.kafka.security import parse_security
from pydantic import SecretStr

from sidecar.config import KafkaSettings
from sidecar.kafkautil import client_kwargs, faststream_security


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_source_and_sinks_use_the_same_protocol(protocol: str, mechanism: str) -> None:
    """``security_protocol`` decides: a mechanism left set with SSL or PLAINTEXT made the
    source try SASL (SASL_SSL, SASL_PLAINTEXT) while the sinks did not."""
    settings = KafkaSettings(
        security_protocol=protocol,  # type: ignore[arg-type]
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username="svc",
        sasl_password=SecretStr("s3cret"),
    )
    source = parse_security(faststream_security(settings))
    sinks = client_kwargs(settings, ("broker:9092",))
    assert source.get("security_protocol", "PLAINTEXT") == sinks["security_protocol"] == protocol
    assert ("ssl_context" in sinks) == protocol.endswith("SSL")
    assert (source.get("ssl_context") is not None) == protocol.endswith("SSL")
    if protocol.startswith("SASL"):
        assert source["sasl_mechanism"] == sinks["sasl_mechanism"] == mechanism
        assert source["sasl_plain_username"] == sinks["sasl_plain_username"] == "svc"
        assert source["sasl_plain_password"] == sinks["sasl_plain_password"] == "s3cret"
    else:
        assert "sasl_mechanism" not in source
