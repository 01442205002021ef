"""Blender adapters, thin: core results in, Blender data out (and back).

Stages: ``anim`` (keyframes, EMG objects) → ``rigs`` (one interface over ARKit and FLAME faces) →
``jobs`` (one function per thing a user asks for) → ``ui`` (operators, panels, settings).
"""
