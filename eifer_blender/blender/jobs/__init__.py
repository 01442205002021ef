"""Jobs: the things a user asks for, one public function each, called by the operators and the CLI alike.

:mod:`.import_emg` (recording → keyed envelopes), :mod:`.drive` (recording → keyed face),
:mod:`.infer` (face animation → inferred muscles), :mod:`.compare` (recorded vs inferred),
:mod:`.export` (curves → CSV/EDF/BDF/BIDS), :mod:`.heatmap` (muscle activity on the face),
:mod:`.render` and :mod:`.scene` (stage, stills, videos and saved scenes for headless runs). Each
computes and checks through ``core`` first and writes the scene last.
"""
