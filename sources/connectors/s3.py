"""An S3-compatible bucket (AWS S3, MinIO, Ceph, Wasabi...), read with boto3: every object
under the location's prefix (s3://bucket/prefix), keyed by its path below the prefix, its
marker the object's ETag. Folder placeholder objects (keys ending in "/") are not items."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sources.connectors import Connector, ItemUnreadable, Listed, SourceUnavailable, spooled
from sources.credentials import Credentials

_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3})


class S3Connector(Connector):
    def __init__(self, location: str, endpoint: str, credentials: Credentials):
        parts = urlsplit(location)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        if self.prefix:
            self.prefix += "/"
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name="us-east-1",  # boto3 follows a bucket's redirect to its own region
            aws_access_key_id=credentials.username or None,
            aws_secret_access_key=credentials.secret or None,
            config=_CONFIG,
        )

    def listing(self) -> Iterator[Listed]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        try:
            objects = [item for page in pages for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailable(f"cannot list s3://{self.bucket}/{self.prefix}: {exc}") from exc
        for item in objects:
            key = item["Key"].removeprefix(self.prefix)
            if key and not key.endswith("/"):
                yield Listed(key=key, marker=item["ETag"].strip('"'))

    @contextmanager
    def open(self, key: str):
        with spooled() as buffer:
            try:
                self.client.download_fileobj(self.bucket, self.prefix + key, buffer)
            except (BotoCoreError, ClientError) as exc:
                raise ItemUnreadable(f"cannot read {key}: {exc}") from exc
            buffer.seek(0)
            yield buffer
