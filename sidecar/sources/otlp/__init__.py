"""OTLP ingestion: OpenInference and OpenTelemetry GenAI spans become traces.

:mod:`.conventions` names the attributes read, :mod:`.mapping` reads them from
each protobuf span, :mod:`.values` and :mod:`.feedback` interpret them (JSON
inputs, messages, documents, annotations), :mod:`.build` turns one trace's spans
into a :class:`~sidecar.trace.Trace` and :mod:`.assembly` groups spans from any
number of export batches into traces (:mod:`.settings` configures it, :mod:`.closed`
remembers the traces it closed, :mod:`.outputs` holds what it returns and counts,
:mod:`.metrics` exports those counts). :mod:`.receiver` speaks the OTLP protocols and
:mod:`.source` is the pipeline stage that ties them together.
"""

from .assembly import AssemblySettings, TraceAssembler
from .mapping import MappedBatch, SpanInfo, SpanMapper
from .outputs import AssemblyOutput, AssemblyStats, LateFeedback

__all__ = [
    "AssemblyOutput",
    "AssemblySettings",
    "AssemblyStats",
    "LateFeedback",
    "MappedBatch",
    "SpanInfo",
    "SpanMapper",
    "TraceAssembler",
]
