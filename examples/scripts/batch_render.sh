#!/usr/bin/env bash
# Drive the open head from every recording given and render each to a video, headless.
#   examples/scripts/batch_render.sh OUT_DIR rec1.edf rec2.bdf …
# Uses Blender's own CLI when `blender` is on PATH (the extension installed), else the `eifer`
# command of the virtual environment, else `python -m eifer_blender`. A recording whose video is
# newer than it is skipped. For whole data sets, resumable and on a cluster: `eifer batch`.
set -u
out=${1:?usage: batch_render.sh OUT_DIR RECORDING…}; shift
mkdir -p "$out"
if command -v blender >/dev/null; then eifer=(blender -b --command eifer)
elif command -v eifer >/dev/null; then eifer=(eifer)
else eifer=(python -m eifer_blender); fi
status=0  # 1 if any failed, else 3 if any was refused
declare -A seen
for recording in "$@"; do
  name=$(basename "${recording%.*}")
  if [ ! -f "$recording" ]; then
    echo "refused $recording (no such file)"; [ $status -eq 0 ] && status=3; continue
  fi
  if [ -n "${seen[$name]:-}" ]; then  # one output name per recording
    echo "refused $recording (same name as ${seen[$name]}: rename one)"; [ $status -eq 0 ] && status=3; continue
  fi
  seen[$name]=$recording
  if [ "$out/$name.mp4" -nt "$recording" ]; then
    echo "skipped $recording (its video is up to date)"; continue
  fi
  "${eifer[@]}" drive --emg "$recording" --out "$out/$name.blend" --plot "$out/$name.png" \
    --render "$out/$name.mp4" --resolution 384
  code=$?
  case $code in
    0) echo "done    $recording" ;;
    3) echo "refused $recording (bad input: see the message above)"; [ $status -eq 0 ] && status=3 ;;
    *) echo "failed  $recording (exit $code)"; status=1 ;;
  esac
done
exit $status
