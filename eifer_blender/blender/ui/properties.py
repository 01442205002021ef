"""Scene-level settings shown in the EIFER sidebar."""
import bpy

from ..anim import emg_object


def _is_recording(self, obj):
    return emg_object.kind(obj) == "recording"


def _is_face(self, obj):
    return obj.type == "MESH" and obj.data.shape_keys is not None


class EiferShapeMapping(bpy.types.PropertyGroup):
    """One row of the mapping table: an ARKit name, the shape key it drives, gain and offset."""

    arkit: bpy.props.StringProperty(name="ARKit")
    shape: bpy.props.StringProperty(name="Shape key", description="Shape key this ARKit shape drives (empty: none)")
    gain: bpy.props.FloatProperty(name="Gain", default=1.0, soft_min=0.0, soft_max=3.0)
    offset: bpy.props.FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0)


class EiferChannelSite(bpy.types.PropertyGroup):
    """One row of the channel table: a file channel and the montage site it records."""

    channel: bpy.props.StringProperty(name="Channel", description="The channel as the file names it")
    site: bpy.props.StringProperty(
        name="Site", description="The Fridlund site this channel records (Zyg_L, Corr_R, …, or Jena names "
                                 "such as 'Zyg li'); empty: left out")


def _is_inferred(self, obj):
    return emg_object.kind(obj) == "inferred"


def _is_emg(self, obj):
    return emg_object.is_emg_object(obj)


class EiferChannelMetric(bpy.types.PropertyGroup):
    """One row of the Compare table: a channel (``name``) and EIFER's metrics for it."""

    mse: bpy.props.FloatProperty(name="MSE")
    rmse: bpy.props.FloatProperty(name="RMSE")
    smape: bpy.props.FloatProperty(name="SMAPE", description="Symmetric mean absolute percentage error (%)")
    spearman: bpy.props.FloatProperty(name="Spearman ρ")


class EiferSceneSettings(bpy.types.PropertyGroup):
    face: bpy.props.PointerProperty(
        name="Face", type=bpy.types.Object, poll=_is_face,
        description="The face the EMG drives or muscles are inferred from (a mesh with shape keys)")
    recording: bpy.props.PointerProperty(
        name="Recording", type=bpy.types.Object, poll=_is_recording,
        description="An imported EMG recording (made by Import EMG)")
    model_path: bpy.props.StringProperty(
        name="Model", subtype="FILE_PATH",
        description="EMG→expression ONNX model; empty uses the shipped ones: emg2arkit to drive from a "
                    "recording, emg2arkit_causal (no look-ahead) to go live")
    retarget_path: bpy.props.StringProperty(
        name="Retarget", subtype="FILE_PATH",
        description="ARKit→FLAME matrix (.npy/.npz) for driving a FLAME head with an ARKit model")
    start_frame: bpy.props.IntProperty(
        name="Start Frame", default=1, description="Scene frame at which the recording starts")
    use_frame_range: bpy.props.BoolProperty(
        name="Limit Frames", description="Key only the scene's preview/playback range")
    reread_recording: bpy.props.BoolProperty(
        name="Re-read Recording File",
        description="Drive from the recording file again (its path is kept relative to the .blend) and "
                    "replace the EMG curves; off: drive from the EMG curves in the .blend, edits included")
    mains_hz: bpy.props.EnumProperty(
        name="Mains", items=[("AUTO", "Auto", "Found in the recording's spectrum (import); 50 Hz when driving, "
                                              "as the shipped model was trained"),
                             ("50", "50 Hz", "Europe, Asia, Africa, Australia"),
                             ("60", "60 Hz", "The Americas, parts of Asia")], default="AUTO",
        description="Power-line frequency notched out of the recording, with its harmonics")
    units: bpy.props.EnumProperty(
        name="Units", items=[("FILE", "As the File Says", "Use the units the file states (refused when it states none)"),
                             ("uV", "µV", "Microvolts"), ("mV", "mV", "Millivolts"), ("V", "V", "Volts")],
        default="FILE", description="Units of a recording that does not state them (CSV, EDF with an empty "
                                    "physical dimension)")
    side: bpy.props.EnumProperty(
        name="Side", items=[("NONE", "From Names", "Channel names say the side (Zyg_L, Corr re)"),
                            ("LEFT", "Left", "A one-sided set-up on the subject's left"),
                            ("RIGHT", "Right", "A one-sided set-up on the subject's right")], default="NONE",
        description="Side of channels whose names give a muscle but no side (EMG_zyg)")
    mirror: bpy.props.BoolProperty(
        name="Mirror to Other Side", description="Copy each one-sided site to the other side (Zyg_L also drives Zyg_R)")
    nan_policy: bpy.props.EnumProperty(
        name="Missing Samples", items=[("RAISE", "Refuse", "Stop with the times of the missing samples"),
                                       ("ZERO", "Set to 0", "Missing samples become 0"),
                                       ("INTERPOLATE", "Interpolate", "Bridge gaps up to 0.5 s linearly")],
        default="RAISE", description="What to do with missing samples (NULL or empty cells)")
    channel_sites: bpy.props.CollectionProperty(type=EiferChannelSite)
    channel_sites_file: bpy.props.StringProperty(
        name="Channels Of", subtype="FILE_PATH", description="The recording the channel table belongs to")
    channel_sites_index: bpy.props.IntProperty()
    smoothing_s: bpy.props.FloatProperty(
        name="Smoothing", default=0.0, min=0.0, soft_max=0.5, unit="TIME_ABSOLUTE",
        description="Savitzky–Golay window in seconds (0: off)")
    calibration: bpy.props.EnumProperty(
        name="Calibration", default="PERCENTILE",
        items=[("PERCENTILE", "Per-Session Percentile",
                "Full activity is each channel's 99th percentile over the recording (amplifier gain cancels)"),
               ("CALIBRATION", "Rest + Posed Maximum",
                "Full activity is the maximal posed expressions in the calibration block (events labelled "
                "'calibration' or the range below)"),
               ("REST", "Rest Only", "Full activity is a fixed multiple of the rest level: trusts the amplitudes")],
        description="What the network reads as full muscle activity (how facial-EMG labs calibrate)")
    calibration_start_s: bpy.props.FloatProperty(
        name="Block Start", default=0.0, min=0.0, unit="TIME_ABSOLUTE",
        description="Start of the posed-maximum block in recording seconds (start = end: use 'calibration' events)")
    calibration_end_s: bpy.props.FloatProperty(
        name="Block End", default=0.0, min=0.0, unit="TIME_ABSOLUTE",
        description="End of the posed-maximum block in recording seconds")
    sensitivity: bpy.props.FloatProperty(
        name="Sensitivity", default=1.0, min=0.05, soft_max=4.0, precision=2,
        description="Multiplies the calibrated activity before the network (2: twice as expressive)")
    driven_shapes: bpy.props.StringProperty(
        name="Driven Shapes", description="The shapes the last drive keyed (the recorded sites move them)")
    left_alone_shapes: bpy.props.StringProperty(
        name="Left Alone", description="Shapes no recorded site moves: the last drive left their animation as it was")
    rest_floor: bpy.props.FloatProperty(
        name="Rest Floor", default=0.05, min=0.0, max=0.5, precision=3,
        description="Weights up to this value are keyed as 0 and the rest stretched back to 0–1, "
                    "so a face at rest stays still (0: off, the model's raw weights)")
    key_tolerance: bpy.props.FloatProperty(
        name="Key Tolerance", default=0.002, min=0.0, soft_max=0.05, precision=4,
        description="Drop keys that linear interpolation reproduces within this value (0: key every frame)")
    swap_sides: bpy.props.BoolProperty(
        name="Swap Left/Right", description="For rigs whose Left and Right shape keys are mirrored")
    mapping: bpy.props.CollectionProperty(type=EiferShapeMapping)
    mapping_index: bpy.props.IntProperty()
    # live (ui/live_ops.py): an LSL stream drives the face
    live_stream_name: bpy.props.StringProperty(
        name="Stream", default="",
        description="Name of the LSL stream to follow (empty: the first stream of the type below)")
    live_stream_type: bpy.props.StringProperty(
        name="Type", default="EMG", description="LSL stream type looked for when no name is given")
    live_calibration_s: bpy.props.FloatProperty(
        name="Calibration", default=10.0, min=0.5, soft_max=60.0, unit="TIME_ABSOLUTE",
        description="Seconds at the start of the stream that calibrate rest and full activity (rest, then "
                    "show the expressions); the face moves after that")
    live_timeout_s: bpy.props.FloatProperty(
        name="Time-out", default=5.0, min=0.1, soft_max=30.0, unit="TIME_ABSOLUTE",
        description="How long Go Live looks for the stream")
    live_active: bpy.props.BoolProperty(name="Live", description="A stream drives the face")
    live_recording: bpy.props.BoolProperty(name="Recording", description="What is shown is being recorded")
    live_state: bpy.props.StringProperty(name="State", description="CALIBRATING, LIVE, STALLED or ENDED")
    live_status: bpy.props.StringProperty(name="Status", description="What the live session is doing")
    live_latency_ms: bpy.props.FloatProperty(
        name="Latency", unit="NONE", precision=1,
        description="Sample in → weights out: transport plus processing, in ms (on top of the causal window)")
    live_window_ms: bpy.props.FloatProperty(
        name="Window", precision=0,
        description="The causal window's lag plus a centred model's wait for its future half, in ms")
    # infer muscles / compare / heatmap (ui/infer_ops.py)
    inferred: bpy.props.PointerProperty(
        name="Inferred", type=bpy.types.Object, poll=_is_inferred,
        description="Muscle activity inferred from a face (made by Infer Muscles)")
    inverse_model_path: bpy.props.StringProperty(
        name="Exp2EMG Model", subtype="FILE_PATH",
        description="Expression→EMG ONNX model; empty uses the shipped arkit2emg model")
    heatmap_source: bpy.props.PointerProperty(
        name="Heatmap Source", type=bpy.types.Object, poll=_is_emg,
        description="The EMG object (inferred or recorded) whose activity the heatmap shows")
    compare_output: bpy.props.StringProperty(
        name="Output Folder", subtype="DIR_PATH", default="",
        description="Where Compare writes its CSV table and PNG plot (empty: next to the .blend; an "
                    "unsaved file needs a folder here)")
    compare_scaling: bpy.props.EnumProperty(
        name="Scaling", default="AUTO", items=[
            ("AUTO", "Auto", "Percentile scaling when the units differ (µV against normalised), else none"),
            ("NONE", "None", "Score the values as they are"),
            ("PERCENTILE", "Percentile", "Map each channel to its 5th–95th percentile before scoring")],
        description="How recorded and inferred curves are put on one scale (Spearman ρ does not depend on it)")
    compare_rows: bpy.props.CollectionProperty(type=EiferChannelMetric)
    compare_index: bpy.props.IntProperty()
    compare_summary: bpy.props.StringProperty(name="Summary")
    compare_csv: bpy.props.StringProperty(name="Metrics CSV", subtype="FILE_PATH")
    compare_png: bpy.props.StringProperty(name="Comparison Plot", subtype="FILE_PATH")


CLASSES = (EiferShapeMapping, EiferChannelSite, EiferChannelMetric, EiferSceneSettings)


def register_properties():
    bpy.types.Scene.eifer = bpy.props.PointerProperty(type=EiferSceneSettings)


def unregister_properties():
    del bpy.types.Scene.eifer
