"""bpy-free core of EIFER for Blender: numpy/scipy/mne/onnxruntime only.

The folders are the stages of the data path, in order; a module imports only from its own stage
or the stages before it (``tests/core/test_layering.py`` checks it, lazy imports included):

``recording``  file → Recording (µV, rate, channel names, montage sites, events)
``envelopes``  Recording → muscle-activity envelopes at the scene's fps (EIFER's chain)
``network``    envelopes ⇄ expression through the ONNX models (EMG2Exp, Exp2EMG)
``expression`` expression tracks: spaces, curve conditioning, retargets, FLAME parameter layouts
``heads``      face geometry: the user's FLAME model, the CC0 open head, electrode sites
``trackfiles`` tracks ⇄ CSV / EDF / BDF / BIDS-EMG files
``pipeline``   the two jobs end to end: emg_to_expression, expression_to_muscles
``analysis``   metrics, comparison and plots; ``simulator`` the physiological training simulator
``batch``      many recordings through the headless jobs, on a process pool, Dask or SLURM

``errors``, ``tracks`` (the containers that move between stages), ``pickles`` (restricted
unpickling) and ``atomic`` (outputs written whole or not at all) are the base every stage may use.
Nothing below this package imports ``bpy``.
"""
