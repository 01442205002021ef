"""Animation data: fast F-curve keying and reading (:mod:`.keyframes`) and the EMG objects
(:mod:`.emg_object`, the only owner of their ``eifer_*`` keys and ``emg:<channel>`` curves)."""
