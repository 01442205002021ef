"""Analysis: EIFER's metrics, recorded-against-inferred comparison and plots.

In: two tracks on one clock (recorded and inferred muscles, or envelopes and the curves they
drove); out: per-channel MSE, RMSE, SMAPE and Spearman ρ (:mod:`.metrics`, :mod:`.compare`), CSV
tables and PNG plots (:mod:`.plots`).
"""
