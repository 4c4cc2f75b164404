"""Where attachment bytes live: a folder or an S3-compatible bucket, chosen by
``FILE_STORAGE_URL`` (``file://path`` or ``s3://bucket/prefix``).

Keys are made by the server (``<course id>/<attachment id>``), never from a file name,
so an upload cannot escape its folder and a download names the file it was given.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` inclusive (the whole object when ``end`` is None)."""
        ...

    async def delete(self, key: str) -> None: ...


class FolderStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("storage key outside the storage folder")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # readers never see half a file

    async def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        return await asyncio.to_thread(self._read, self._path(key), start, end)

    @staticmethod
    def _read(path: Path, start: int, end: int | None) -> bytes:
        with path.open("rb") as handle:
            handle.seek(start)
            return handle.read() if end is None else handle.read(end - start + 1)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)


class S3Storage:
    """Any S3-compatible store through boto3 (endpoint and keys from the AWS_* variables,
    e.g. ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``)."""

    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        import boto3  # only a deployment that uses S3 pays for importing it

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    async def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        response = await asyncio.to_thread(
            self.client.get_object, Bucket=self.bucket, Key=self._key(key), **extra
        )
        body: bytes = await asyncio.to_thread(response["Body"].read)
        return body

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))


def storage_from_url(url: str) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        # file://./var/files (relative) and file:///srv/files (absolute) both work.
        return FolderStorage(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "s3" and parsed.netloc:
        return S3Storage(parsed.netloc, parsed.path)
    raise ValueError(f"FILE_STORAGE_URL must be file://... or s3://bucket/prefix, not {url!r}")
