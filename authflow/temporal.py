"""The one Temporal client factory: address, namespace, TLS/API key and the codec."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from authflow.codec import EncryptionCodec
from authflow.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=EncryptionCodec(settings.codec_keyring()),
        # Failure messages and stack traces go into the encrypted payload too.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def _tls(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        with (
            open(settings.temporal_tls_cert, "rb") as cert,
            open(settings.temporal_tls_key, "rb") as key,
        ):
            return TLSConfig(client_cert=cert.read(), client_private_key=key.read())
    return bool(settings.temporal_api_key)


def runtime_with_metrics(bind_address: str) -> Runtime:
    """A Temporal runtime that exposes the SDK's own metrics in Prometheus format."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


async def connect(
    settings: Settings, *, runtime: Runtime | None = None, lazy: bool = False
) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        tls=_tls(settings),
        api_key=settings.temporal_api_key or None,
        runtime=runtime,
        lazy=lazy,
    )
