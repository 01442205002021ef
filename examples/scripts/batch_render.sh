#!/usr/bin/env bash
# Drive the open head from every recording given and render each to a video, headless.
#   examples/scripts/batch_render.sh OUT_DIR rec1.edf rec2.bdf …
# Uses Blender's own CLI when `blender` is on PATH (the extension installed), else `python -m`.
set -u
out=${1:?usage: batch_render.sh OUT_DIR RECORDING…}; shift
mkdir -p "$out"
if command -v blender >/dev/null; then eifer=(blender -b --command eifer); else eifer=(python -m eifer_blender); fi
failed=0
for recording in "$@"; do
  name=$(basename "${recording%.*}")
  "${eifer[@]}" drive --emg "$recording" --out "$out/$name.blend" --plot "$out/$name.png" \
    --render "$out/$name.mp4" --resolution 384
  case $? in
    0) echo "ok      $recording" ;;
    3) echo "skipped $recording (input error, see above)"; failed=1 ;;
    *) echo "failed  $recording"; failed=1 ;;
  esac
done
exit $failed
