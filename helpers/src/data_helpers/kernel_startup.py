# IPython runs this file when a kernel starts if PYTHONSTARTUP names it (the book's build does:
# see tasks.py). With DATA_HELPERS_LOOPBACK_ONLY=1, the kernel may then reach loopback addresses only.
from data_helpers.netguard import install_from_environment as _data_helpers_install_guard

_data_helpers_install_guard()
del _data_helpers_install_guard
