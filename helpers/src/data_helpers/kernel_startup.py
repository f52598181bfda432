# IPython runs this file when a kernel starts if PYTHONSTARTUP names it (the book's build does:
# see tasks.py). With DATA_HELPERS_LOOPBACK_ONLY=1, the kernel may then reach loopback addresses only;
# with DATA_HELPERS_CELL_TIMES naming a file, it records how long each cell takes (data_helpers.celltimes).
from data_helpers.celltimes import install_from_environment as _data_helpers_record_cells
from data_helpers.netguard import install_from_environment as _data_helpers_install_guard

_data_helpers_install_guard()
_data_helpers_record_cells()
del _data_helpers_install_guard, _data_helpers_record_cells
