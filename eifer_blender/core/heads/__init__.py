"""Face geometry: the user's FLAME model (file reading and forward model), the CC0 open head, electrode sites.

In: a FLAME model file, the bundled open-head asset, a montage; out: vertices, joints, blendshape
targets and electrode positions as numpy arrays, for the rigs in ``blender/rigs`` and the heatmap.
"""
