"""Human-review export: traces that need a person's eyes, as Label Studio tasks.

* :mod:`.settings` — ``review:`` in the YAML file (:class:`~.settings.ReviewSettings`);
* :mod:`.tasks` — which events need review, the task format, the shipped labeling
  config (``labeling_config.xml``) and a check of predictions against a config;
* :mod:`.api` — a small Label Studio REST client (token auth, batched imports);
* :mod:`.destinations` — a JSONL / JSON-array file, a Kafka topic, a Label Studio project;
* :mod:`.sink` — :class:`~.sink.ReviewSink`, the pipeline sink.

Nothing is imported here, so that :mod:`sidecar.config` can import the settings
without importing the sink (which imports :mod:`sidecar.config`).
"""
