"""The training simulator: a physiological face model and the sEMG it would produce, with ground truth.

In: a protocol, a subject id and a seed; out: a simulated Recording (Fridlund-22, µV), the face as
an ARKit-52 ExpressionTrack and the true muscle activations. :mod:`.physiology` is the face model
(muscles → action units → ARKit), :mod:`.protocols` what a person does, :mod:`.synthesis` the sEMG
signal model, :mod:`.session` whole sessions and their files. Used to train and test the networks
(models/); no paired sEMG + expression data can be shipped.
"""

# what a simulated person does (:mod:`.protocols`); named here, without imports, so that the command
# line can offer them without loading the simulator
PROTOCOLS: tuple[str, ...] = ("emotions", "schaede", "mixed")
