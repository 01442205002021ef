import gc
import sys

from .cli import main

status = main()
# The interpreter's last full collection would walk every object bpy, SciPy and MNE made (~0.1 s)
# only to free memory that the process hands back as it ends; frozen objects are not walked.
gc.freeze()
sys.exit(status)
