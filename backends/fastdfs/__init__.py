"""FastDFS support: an asyncio client for the tracker/storage protocol and the
backend built on it (appender files for streams, a KV mapping for keys).

    protocol   framing, command codes, fields, errno → backends.errors
    client     FastDFSClient: pooled connections, every command the backend uses
    backend    FastDFSBackend / FastDFSConfig (registry type "fastdfs")
"""

from backends.fastdfs.backend import FastDFSBackend, FastDFSConfig
from backends.fastdfs.client import Download, FastDFSClient, StreamBody
from backends.fastdfs.protocol import (
    FastDFSError,
    FastDFSNotFound,
    FastDFSRejected,
    FastDFSServerError,
    FileId,
    FileInfo,
    StorageAddr,
)

__all__ = [
    "Download",
    "FastDFSBackend",
    "FastDFSClient",
    "FastDFSConfig",
    "FastDFSError",
    "FastDFSNotFound",
    "FastDFSRejected",
    "FastDFSServerError",
    "FileId",
    "FileInfo",
    "StorageAddr",
    "StreamBody",
]
