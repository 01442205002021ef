"""EIFER's learned part, training side (torch): data, networks, training, evaluation, ONNX export.

The add-on itself never imports this package: it runs the exported ONNX files through
``eifer_blender.core.network``. Modules:

``data``       clips, subject-wise splits, window batches (same windows as the runtime)
``simdata``    the simulated data set (simulator -> ``processing.process_recording``), cached
``mmm``        reader for the public "Mimics, Muscles, and Me" layout (FLAME or ARKit targets)
``nets``       ``WindowNet``: per-frame MLP (EIFER) or a window of frames, ARKit/FLAME/envelope heads
``train``      ``python -m models.train --config models/configs/<name>.toml [--ship]``
``evaluate``   ``python -m models.evaluate --config ... [--oracle --plot out.png --markdown]``
``export``     hand-written ONNX graph + ONNX Runtime == torch check (1e-5)

Retrain the shipped models (``eifer_blender/models/*.onnx``): ``python -m models.train --shipped``.
Model cards: ``models/emg2arkit.md``, ``models/arkit2emg.md``.
"""
