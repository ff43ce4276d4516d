import os
import sys


def _drop_working_folder_from_path() -> None:
    """``python -m`` puts the working folder first on the import path, so a spec folder's ``json.py`` or
    ``numpy.py`` would replace the module gradcheck imports; gradcheck finds its own modules without it.
    (The ``gradcheck`` command and ``python -P`` never add it.)"""
    here = os.path.realpath(os.getcwd())
    package_parent = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    if package_parent == here:  # run from a source checkout: the working folder is where gradcheck is
        return
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or ".") != here]


_drop_working_folder_from_path()

from .entry import main  # noqa: E402

if __name__ == "__main__":
    main(prog_name="gradcheck")
