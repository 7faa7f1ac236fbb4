"""Kafka client settings (``kafka:`` in the config), shared by the source, the sinks and
replay; re-exported by :mod:`sidecar.config`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class KafkaSettings(BaseModel):
    """Kafka client options shared by the source, the sinks and replay.

    Bootstrap servers and topics come from the ``kafka://`` URIs; everything
    else is here. Passwords are secrets: never logged, never printed.
    """

    model_config = ConfigDict(extra="forbid")

    client_id: str = "rag-sidecar"
    group_id: str = Field("rag-sidecar", description="Consumer group (a URI's ?group= wins).")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new group starts reading."
    )
    session_timeout_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    max_records: int = Field(500, ge=1, description="Records per consumed batch.")
    batch_timeout_ms: int = Field(
        20, ge=1, description="How long a batch poll waits for records (latency vs batch size)."
    )
    fetch_max_wait_ms: int = Field(
        25,
        ge=1,
        description="How long the broker may hold a fetch waiting for data. Sets the idle fetch "
        "rate (40/s per broker at 25) and, on brokers that answer a waiting fetch only when "
        "it expires (tansu), the latency floor.",
    )
    commit_interval_s: float = Field(
        1.0, gt=0, description="How often finished offsets are committed (also on rebalance/stop)."
    )
    max_in_flight: int = Field(
        5_000, ge=1, description="Records read but not yet written; above it partitions pause."
    )
    acks: Literal["all", "1", "0"] = "all"
    enable_idempotence: bool = Field(
        True, description="Idempotent producer (needs broker support for InitProducerId)."
    )
    linger_ms: int = Field(5, ge=0)
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    max_batch_size: int = Field(1 << 20, ge=16384, description="Producer batch bytes.")
    request_timeout_ms: int = Field(
        30_000,
        ge=1000,
        description="Per request; also bounds each offset commit. aiokafka sends JoinGroup with "
        "it too: keep it above the time the broker holds a join (Apache Kafka's "
        "group.initial.rebalance.delay.ms is 3 s; at 2 s the sidecar never joined tansu's group).",
    )
    delivery_timeout_s: float = Field(
        120.0,
        gt=0,
        description="A sink write not acknowledged in this time fails (retried; counted in "
        "rag_sidecar_sink_errors_total) instead of hanging.",
    )
    dead_letter_max_bytes: int = Field(
        1_000_000,
        ge=1024,
        description="Dead-letter values are cut to this many bytes (headers dlq_truncated, "
        "dlq_original_bytes, dlq_original_sha256; the whole record stays at its source offset): "
        "a record the topic cannot take would otherwise stop the pipeline.",
    )

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and (
            self.sasl_mechanism is None or self.sasl_username is None or self.sasl_password is None
        ):
            raise ValueError("SASL needs sasl_mechanism, sasl_username and sasl_password")
        if self.enable_idempotence and self.acks != "all":
            raise ValueError("enable_idempotence needs acks 'all' (or set it to false)")
        return self
