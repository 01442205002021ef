"""bpy-free core of EIFER for Blender: numpy/scipy/mne/onnxruntime only.

Nothing below this package may import ``bpy``; ``tests/core/test_layering.py`` checks it.
"""
