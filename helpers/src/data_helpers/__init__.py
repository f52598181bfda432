"""data_helpers: the companion package of the textbook on enormous 3D images.

Modules, by concern:

- :mod:`data_helpers.datasets` - sample data: download, verify, cache, open.
- :mod:`data_helpers.server` - a local HTTP server (mirrors, remote-data lessons, tests).
- :mod:`data_helpers.s3server` - a local S3-compatible object store (remote-data lessons, tests).
- :mod:`data_helpers.objectstore` - put a finished OME-Zarr image into an object store, root metadata last.
- :mod:`data_helpers.netguard` - refuse network connections that would leave this machine.
- :mod:`data_helpers.plotting` - figures of 2D to 5D images in physical units, read from OME-Zarr at any level.
- :mod:`data_helpers.stores` - what a Zarr store holds on disk.
- :mod:`data_helpers.chunking` - chunk arithmetic and advice (counts, read costs, shapes).
- :mod:`data_helpers.convert` - TIFF stacks, multi-page TIFF and HDF5 to OME-Zarr, and back to TIFF.
- :mod:`data_helpers.omezarr` - write OME-Zarr images safely, with a full pyramid, in bounded memory.
- :mod:`data_helpers.reading` - open one level of a local or remote OME-Zarr image as a lazy dask array.
- :mod:`data_helpers.validation` - check OME-Zarr data and report every error and warning.
- :mod:`data_helpers.storeaccess` - read a store's files from a folder or an http(s)/s3 URL.
- :mod:`data_helpers.units` - the UDUNITS-2 unit names OME-Zarr allows, from common spellings.
- :mod:`data_helpers.synthetic` - lazily generated test volumes of any size, with labels.
- :mod:`data_helpers.workspace` - the ``data/`` folders where chapters write.
- :mod:`data_helpers.processing` - a local dask cluster that never leaks, and a store that counts reads.
- :mod:`data_helpers.budget` - a chapter's peak memory (worker processes included) against its budget.
- :mod:`data_helpers.claims` - numbers glued into the prose, and timing claims (strict in the build).
- :mod:`data_helpers.viewer` - screenshots of a web viewer (Neuroglancer) in headless Chromium.

The sample heart image is derived from the Human Organ Atlas (HiP-CT),
licensed CC-BY-4.0. Cite: Walsh, C. L. et al. Imaging intact human organs with
local resolution of cellular structures using hierarchical phase-contrast
tomography. Nature Methods 18, 1532-1541 (2021).
"""

from data_helpers.datasets import (
    ARRAY_TYPES,
    DATASETS,
    DatasetInfo,
    DataUnavailableError,
    cache_dir,
    data_source,
    dataset_info,
    download_all,
    fetch_dataset,
    heart_data_path,
    load_dataset,
    load_heart_data,
)
from data_helpers.chunking import (
    ChunkLayout,
    ReadCost,
    chunk_layout,
    chunks_touched,
    format_bytes,
    suggest_chunk_shape,
)
from data_helpers.convert import ConvertError, TiffExport, hdf5_to_ome_zarr, ome_zarr_to_tiff, tiff_to_ome_zarr
from data_helpers.omezarr import (
    METHODS,
    OmeZarrError,
    OmeZarrImage,
    plan_pyramid,
    read_ome_metadata,
    write_ome_zarr,
)
from data_helpers.labels import write_labels
from data_helpers.plotting import (
    ImageView,
    contrast_limits,
    image_view,
    orthogonal_views,
    projection,
    show_montage,
    show_plane,
    show_projection,
    show_slices,
)
from data_helpers.reading import OmeZarrLevel, open_ome_zarr
from data_helpers.validation import InvalidOmeZarrError, Problem, ValidationReport, validate_ome_zarr
from data_helpers.units import SPACE_UNITS, TIME_UNITS, UnitError, convert_units, normalize_unit
from data_helpers.server import LocalServer, serve_directory
from data_helpers.s3server import LocalS3Server
from data_helpers.objectstore import UploadReport, upload_ome_zarr
from data_helpers.stores import list_files, show_tree
from data_helpers.synthetic import LABEL_NAMES, synthetic_labels, synthetic_volume
from data_helpers.workspace import OutputFolderError, display_path, output_dir, output_path, repository_root
from data_helpers.viewer import CHROMIUM_FLAGS, find_chromium, screenshot_neuroglancer

__version__ = "0.1.0"

__all__ = [
    "ARRAY_TYPES",
    "CHROMIUM_FLAGS",
    "ChunkLayout",
    "ConvertError",
    "DATASETS",
    "DataUnavailableError",
    "DatasetInfo",
    "ImageView",
    "InvalidOmeZarrError",
    "LABEL_NAMES",
    "LocalS3Server",
    "LocalServer",
    "METHODS",
    "OmeZarrError",
    "OmeZarrImage",
    "OmeZarrLevel",
    "OutputFolderError",
    "Problem",
    "ReadCost",
    "SPACE_UNITS",
    "TIME_UNITS",
    "TiffExport",
    "UnitError",
    "UploadReport",
    "ValidationReport",
    "cache_dir",
    "chunk_layout",
    "chunks_touched",
    "contrast_limits",
    "data_source",
    "dataset_info",
    "display_path",
    "download_all",
    "fetch_dataset",
    "find_chromium",
    "format_bytes",
    "hdf5_to_ome_zarr",
    "heart_data_path",
    "image_view",
    "list_files",
    "load_dataset",
    "load_heart_data",
    "convert_units",
    "normalize_unit",
    "open_ome_zarr",
    "ome_zarr_to_tiff",
    "orthogonal_views",
    "output_dir",
    "output_path",
    "plan_pyramid",
    "projection",
    "read_ome_metadata",
    "repository_root",
    "screenshot_neuroglancer",
    "serve_directory",
    "show_montage",
    "show_plane",
    "show_projection",
    "show_slices",
    "show_tree",
    "suggest_chunk_shape",
    "synthetic_labels",
    "synthetic_volume",
    "tiff_to_ome_zarr",
    "upload_ome_zarr",
    "validate_ome_zarr",
    "write_labels",
    "write_ome_zarr",
]

# A process started by a guarded kernel (a dask worker, a child process a chapter runs) inherits
# DATA_HELPERS_LOOPBACK_ONLY=1; importing this package then guards it too.
from data_helpers import netguard as _netguard  # noqa: E402

_netguard.install_from_environment()
del _netguard
