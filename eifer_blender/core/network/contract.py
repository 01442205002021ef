"""The contract every EIFER ONNX file carries: direction, spaces, names, rates, window, processing.

One ONNX file per direction. ``emg2exp`` maps a window of sEMG envelopes, input ``"emg"``
float32 [batch, window, channels], to expression parameters float32 [batch, outputs];
``exp2emg`` maps a window of expression parameters, input ``"params"``, to envelopes. Every
file carries its contract in ``metadata_props`` (ONNX IR, https://onnx.ai/onnx/repo-docs/IR.html):
one entry per field of :class:`ModelMetadata`, each value JSON-encoded.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from ..errors import InputError
from ..tracks import ExpressionTrack, MuscleTrack
from .windows import ALIGNMENTS

SCHEMA = "eifer-model/1"
DIRECTIONS = {"emg2exp": ("emg", MuscleTrack, ExpressionTrack),
              "exp2emg": ("params", ExpressionTrack, MuscleTrack)}



@dataclass(frozen=True)
class ModelMetadata:
    """The contract an EIFER ONNX file carries (all fields stored in ``metadata_props``).

    ``input_normalisation`` says how input values are scaled before they enter the graph:
    ``{"method": "none"}`` or the per-recording envelope normalisation of ``core.envelopes``
    (``{"method": ..., **parameters}``, applied by ``envelopes.normalise_envelopes`` to each
    recording as a whole); ``output_units`` are the units of the output track. Fixed
    training-set standardisation is part of the graph itself. ``processing`` holds the
    ``ProcessingSettings`` the training envelopes were made with (``{}`` when unknown):
    recordings must be processed the same way.
    ``output_normalisation`` says what a "normalised" output envelope (Exp2EMG) is relative to:
    the per-recording normalisation its training targets went through.
    ``mask_name`` (EMG2Exp only; ``""`` for models without one) names a second graph input,
    float32 [batch, channels], 1 where a channel was recorded: such a model runs on any non-empty
    subset of its input channels. ``output_sites`` maps each output to the input channels that
    move it; an output none of whose channels is recorded is not driven (left as it is).
    """

    direction: str
    input_name: str
    input_space: str
    input_names: tuple[str, ...]
    input_units: str
    input_normalisation: dict
    output_space: str
    output_names: tuple[str, ...]
    output_units: str
    head: str
    fps: float
    window: int
    alignment: str
    training_data: str
    version: str
    processing: dict = field(default_factory=dict)
    output_normalisation: dict = field(default_factory=lambda: {"method": "none"})
    mask_name: str = ""
    output_sites: dict = field(default_factory=dict)
    schema: str = SCHEMA
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_names", tuple(self.input_names))
        object.__setattr__(self, "output_names", tuple(self.output_names))

    def validate(self, source: str = "model") -> "ModelMetadata":
        """Raise :class:`InputError` naming ``source`` when a field is unusable."""
        problems = []
        if self.schema != SCHEMA:
            problems.append(f"schema is {self.schema!r}, this add-on reads {SCHEMA!r}")
        if self.direction not in DIRECTIONS:
            problems.append(f"direction {self.direction!r} is not one of {sorted(DIRECTIONS)}")
        elif self.input_name != DIRECTIONS[self.direction][0]:
            problems.append(f"input is called {self.input_name!r}, expected "
                            f"{DIRECTIONS[self.direction][0]!r} for {self.direction}")
        if self.alignment not in ALIGNMENTS:
            problems.append(f"alignment {self.alignment!r} is not one of {ALIGNMENTS}")
        if self.alignment == "centred" and int(self.window) % 2 == 0:
            problems.append(f"a centred window must be odd, got {self.window}")
        if not int(self.window) >= 1:
            problems.append(f"window must be at least 1 frame, got {self.window}")
        if not float(self.fps) > 0:
            problems.append(f"fps must be positive, got {self.fps}")
        if not self.input_names or not self.output_names:
            problems.append("input or output names are empty")
        if "method" not in self.input_normalisation:
            problems.append("input_normalisation has no 'method'")
        if self.mask_name and self.direction != "emg2exp":
            problems.append("only an emg2exp model takes a channel mask")
        unknown = sorted({s for sites in self.output_sites.values() for s in sites} - set(self.input_names))
        if unknown:
            problems.append(f"output_sites names channels that are not inputs: {', '.join(unknown)}")
        if problems:
            raise InputError(f"{source}: not a usable EIFER model: " + "; ".join(problems))
        return self

    def to_props(self) -> dict[str, str]:
        """``metadata_props`` entries: field name -> JSON text."""
        return {k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> "ModelMetadata":
        """Parse ``metadata_props`` (as ONNX Runtime returns them); errors name ``source``."""
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls)
                    if f.name not in ("schema", "extra", "processing", "output_normalisation", "mask_name",
                                      "output_sites")}
        missing = sorted(required - set(props))
        if "direction" not in props:
            raise InputError(f"{source}: not an EIFER model (its ONNX metadata has no 'direction'; "
                             f"an EIFER model is exported by models/export.py)")
        if missing:
            raise InputError(f"{source}: EIFER model metadata lacks {', '.join(missing)}")
        values = {}
        for key in known & set(props):
            try:
                values[key] = json.loads(props[key])
            except json.JSONDecodeError as exc:
                raise InputError(f"{source}: metadata field {key!r} is not valid JSON ({exc})") from exc
        values["fps"] = float(values["fps"])
        values["window"] = int(values["window"])
        return cls(**values).validate(source)
