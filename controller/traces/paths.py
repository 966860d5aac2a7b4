"""Where the public trace files are found."""

from __future__ import annotations

from pathlib import Path

from controller.errors import HarmonyError
from controller.settings import get_settings

_REPO_ROOT = Path(__file__).resolve().parents[2]


def trace_data_root() -> Path:
    """The folder holding `fisher/`, `alibaba-gentd26/` and `alibaba-2018/`.

    `<data_dir>/traces` when `HARMONY_DATA_DIR` is set: an explicit setting wins.
    Otherwise `<repo>/../shared/data` when it exists (a development checkout next to the
    shared data), else `<data_dir>/traces` of the default data directory.
    """
    settings = get_settings()
    shared = _REPO_ROOT.parent / "shared" / "data"
    if "data_dir" not in settings.model_fields_set and shared.is_dir():
        return shared
    return settings.data_dir / "traces"


def trace_file(relative: str) -> Path:
    """The path of one trace file under the data root, or a HarmonyError saying where to put it."""
    root = trace_data_root()
    path = root / relative
    if not path.is_file():
        raise HarmonyError(
            f"trace file {relative} not found under {root}: put the public traces "
            f"(fisher/, alibaba-gentd26/, alibaba-2018/) there (`harmony trace fetch` "
            f"downloads those it knows), or point HARMONY_DATA_DIR at a folder whose "
            f"traces/ subfolder holds them"
        )
    return path
