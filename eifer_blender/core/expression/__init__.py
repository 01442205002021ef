"""Stage ④, expression: expression tracks — parameter spaces, curve conditioning, retargets, FLAME layouts.

In: an ExpressionTrack from the network (or a tracker file); out: the same track conditioned for
keying (:mod:`.curves`), mapped to another space (:mod:`.retarget`) or read from and written to the
FLAME parameter layouts of face trackers (:mod:`.flame_params`, :mod:`.flame_files`). The spaces
are ``arkit52`` (0–1 weights) and ``flame`` (expression coefficients, jaw, eyelids) (:mod:`.spaces`).
"""
