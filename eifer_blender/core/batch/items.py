"""Which recordings a batch runs over, and where each one's outputs go.

A folder (every recording below it), a glob (``data/**/*.bdf``) or a BIDS-EMG data set
(``sub-*/[ses-*/]emg/*_emg.edf|.bdf``, BIDS-EMG specification, "Electromyography" data type).
Each recording's outputs go to ``OUT/<path relative to its input, without the suffix>/``.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

#: suffixes of the recordings a folder is searched for (the formats ``core.recording`` reads,
#: CSV left out: a folder of CSVs is as likely to hold envelopes or tables as raw recordings)
RECORDING_SUFFIXES = (".edf", ".bdf", ".gdf", ".vhdr", ".set", ".fif", ".cnt", ".xdf", ".acq")
BIDS_PATTERNS = ("sub-*/emg/*_emg.edf", "sub-*/emg/*_emg.bdf",
                 "sub-*/ses-*/emg/*_emg.edf", "sub-*/ses-*/emg/*_emg.bdf")
BIDS_HINT = "sub-*/[ses-*/]emg/*_emg.edf|.bdf"


@dataclass(frozen=True)
class Recording:
    """One recording of a batch.

    Attributes
    ----------
    path : Path
        The recording file (absolute).
    root : Path
        The folder its output path is taken relative to (the input folder, or a glob's fixed part).
    name : str
        Its path relative to ``root`` without the suffix, with ``/``: the item's name and output folder.
    """

    path: Path
    root: Path
    name: str

    def out_dir(self, out: Path) -> Path:
        """The item's output folder below the batch's output folder ``out``."""
        return Path(out) / self.name


def is_bids(folder: Path) -> bool:
    """A BIDS data set: a ``dataset_description.json`` or ``sub-*`` folders at the top."""
    return (folder / "dataset_description.json").is_file() or any(p.is_dir() for p in folder.glob("sub-*"))


def _glob_root(pattern: str) -> Path:
    """The fixed folder a glob starts from (its parts before the first wildcard)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed).resolve() if fixed else Path.cwd()


def _in_folder(folder: Path) -> list[Path]:
    if is_bids(folder):
        return sorted({p for pattern in BIDS_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in RECORDING_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def input_roots(inputs) -> list[tuple[str, Path, list[Path], bool]]:
    """Each input as (what was given, the folder outputs mirror, the recordings found, whether it
    is searched: a folder or a glob, as opposed to a named file)."""
    found = []
    for given in ([inputs] if isinstance(inputs, (str, Path)) else list(inputs)):
        text = str(given)
        searched = True
        if glob.has_magic(text):
            root = _glob_root(text)
            files = sorted(Path(p).resolve() for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not files:
                raise InputError(f"{text}: the pattern matches no files")
        else:
            path = Path(text).expanduser()
            if path.is_dir():
                root = path.resolve()
                files = _in_folder(root)
                if not files:
                    where = BIDS_HINT if is_bids(root) else "*" + "|".join(RECORDING_SUFFIXES)
                    raise InputError(f"{path}: no recordings found (looked for {where})")
            elif path.is_file():
                root, files, searched = path.resolve().parent, [path.resolve()], False
            else:
                raise InputError(f"{path}: no such file or folder")
        found.append((text, root, files, searched))
    if not found:
        raise InputError("no inputs given: name a folder, a glob or a BIDS data set")
    return found


def find_recordings(inputs, out=None) -> list[Recording]:
    """The recordings of a batch, in order, each with its output name.

    Parameters
    ----------
    inputs : str | Path | list of str | Path
        Folders (searched recursively; a BIDS data set by its ``emg/`` layout), globs or files.
    out : str | Path | None
        The output folder: refused when it lies inside an input folder or a glob's fixed folder
        (a rerun would search the outputs as inputs); a named file's folder may hold it.

    Returns
    -------
    list of Recording

    Raises
    ------
    InputError
        An input that does not exist or holds no recordings, an output folder inside an input,
        or two recordings that would write the same output folder.
    """
    recordings: dict[str, Recording] = {}
    out_path = Path(out).expanduser().resolve() if out is not None else None
    for text, root, files, searched in input_roots(inputs):
        if searched and out_path is not None and (out_path == root or root in out_path.parents):
            raise InputError(f"--out {out}: the output folder lies inside the input {root}; "
                             f"give a folder outside it")
        for path in files:
            name = path.relative_to(root).with_suffix("").as_posix() if root in path.parents else path.stem
            if name in recordings and recordings[name].path != path:
                raise InputError(f"{path} and {recordings[name].path} would both write {name}/: "
                                 f"give them as separate batches")
            recordings[name] = Recording(path=path, root=root, name=name)
    return list(recordings.values())
