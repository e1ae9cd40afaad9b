"""Where sweeps live: a local folder or a URI that pyarrow's file systems accept (s3://, gs://, hdfs://, file://).

A location is a plain string. Local paths are written atomically (temporary name, fsync, rename); on an
object store an object appears whole when its upload is closed, which gives the same guarantee to readers.
Ray Tune reads and writes its own experiment state and trial checkpoints through the same file systems."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pyarrow.fs as pafs

from prunelab.atomic import atomic_folder, atomic_write
from prunelab.errors import PrunelabError


def is_uri(location: str) -> bool:
    return "://" in str(location)


def is_local(location: str) -> bool:
    return not is_uri(location) or str(location).startswith("file://")


def absolute(location: str | Path) -> str:
    """Local paths made absolute; URIs as given (without a trailing slash)."""
    return str(location).rstrip("/") if is_uri(str(location)) else str(Path(location).resolve())


def join(location: str, *parts: str) -> str:
    return "/".join([str(location).rstrip("/"), *parts]) if is_uri(location) else str(Path(location, *parts))


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The file system and the path inside it."""
    if not is_uri(location):
        return pafs.LocalFileSystem(), str(Path(location).resolve())
    try:
        return pafs.FileSystem.from_uri(str(location))
    except (ValueError, OSError) as error:
        raise PrunelabError(f"storage {location!r} is not a location pyarrow can open: {error}") from None


def local_path(location: str) -> Path | None:
    """The local path of a local location (file:// included), else None."""
    if not is_uri(location):
        return Path(location)
    if location.startswith("file://"):
        return Path(resolve(location)[1])
    return None


def exists(location: str) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def make_dirs(location: str) -> None:
    fs, path = resolve(location)
    fs.create_dir(path, recursive=True)


def write(location: str, write_to: Callable[[BinaryIO], None]) -> str:
    """Write a file whole: atomically on a local disk, as one object upload elsewhere."""
    local = local_path(location)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(local, write_to)
        return location
    fs, path = resolve(location)
    with fs.open_output_stream(path) as stream:
        write_to(stream)
    return location


def read_bytes(location: str) -> bytes:
    fs, path = resolve(location)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def list_files(folder: str, prefix: str = "", suffix: str = "") -> list[str]:
    """Locations of the files directly in `folder` whose names match, sorted; [] if there is no folder."""
    fs, path = resolve(folder)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    names = sorted(info.base_name for info in infos if info.type == pafs.FileType.File
                   and info.base_name.startswith(prefix) and info.base_name.endswith(suffix))
    return [join(folder, name) for name in names]


def upload(local_file: str | Path, location: str) -> str:
    """Copy a local file to `location` (whole, as `write` does)."""
    with open(local_file, "rb") as source:
        return write(location, lambda target: shutil.copyfileobj(source, target, 1 << 20))


def upload_path(local: str | Path, location: str) -> str:
    """Copy a local file, or a folder's files (one level: a deliverable folder), to `location`."""
    local = Path(local)
    if local.is_dir():
        for item in sorted(local.iterdir()):
            if item.is_file():
                upload(item, join(location, item.name))
        return location
    return upload(local, location)


def download(location: str, local_file: str | Path) -> Path:
    """Copy a file, or a folder's files (a deliverable folder, which then appears whole: it is assembled
    beside its destination and renamed), to a local path."""
    fs, path = resolve(location)
    local_file = Path(local_file)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        with atomic_folder(local_file) as staging:
            for info in fs.get_file_info(pafs.FileSelector(path)):
                if info.type == pafs.FileType.File:
                    download(join(location, info.base_name), staging / info.base_name)
        return local_file
    with fs.open_input_stream(path) as source:
        atomic_write(local_file, lambda target: shutil.copyfileobj(source, target, 1 << 20))
    return local_file


def check_writable(location: str) -> None:
    """Refuse a storage location that cannot be written, before anything starts."""
    probe = join(location, ".prunelab-write-probe")
    try:
        make_dirs(location)
        write(probe, lambda handle: handle.write(b"ok"))
        fs, path = resolve(probe)
        fs.delete_file(path)
    except PrunelabError:
        raise
    except OSError as error:
        raise PrunelabError(f"storage {location} is not writable: {error}") from None
