"""Models, endpoint configs and endpoints of the local SageMaker.

An endpoint is ``Creating``/``Updating`` while its model loads in a background
thread, as on the real service; ``UpdateEndpoint`` with a ``DeploymentConfig``
shifts traffic blue/green and rolls back when an alarm fires
(:mod:`.guardrails`); a failed update keeps the old config serving.
"""

from __future__ import annotations

import tarfile
import time
from typing import Any

from local.emulator.constraints import is_serverless
from local.emulator.errors import ServiceError
from local.emulator.guardrails import cloudwatch_alarm_check, shift_traffic
from local.emulator.paging import listing, page
from local.emulator.state import Endpoint, ServiceState
from local.emulator.wire import now, split_s3
from training.serving import SERVERLESS_MAX_BODY_BYTES


class EndpointsMixin(ServiceState):
    """Model, endpoint config and endpoint operations, mixed into
    :class:`local.emulator.service.LocalSageMaker`."""

    def op_CreateModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        arn = self.arn("model", name)
        with self._lock:
            if name in self._models:
                raise ServiceError(
                    "ValidationException",
                    f'Cannot create already existing model "{arn}".',
                )
            self._models[name] = {"request": p, "arn": arn, "created": now()}
        self._put_tags(arn, p.get("Tags"))
        return {"ModelArn": arn}

    def op_DescribeModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        with self._lock:
            model = self._models.get(name)
        if model is None:
            raise ServiceError(
                "ValidationException", f'Could not find model "{self.arn("model", name)}".'
            )
        req = model["request"]
        return {
            "ModelName": name,
            "ModelArn": model["arn"],
            "PrimaryContainer": req.get("PrimaryContainer", {}),
            "ExecutionRoleArn": req.get("ExecutionRoleArn", ""),
            "EnableNetworkIsolation": req.get("EnableNetworkIsolation", False),
            "CreationTime": model["created"],
        }

    def op_DeleteModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        with self._lock:
            if self._models.pop(name, None) is None:
                raise ServiceError(
                    "ValidationException", f'Could not find model "{self.arn("model", name)}".'
                )
        return {}

    def op_ListModels(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {"ModelName": n, "ModelArn": m["arn"], "CreationTime": m["created"]}
                for n, m in self._models.items()
            ]
        return listing("Models", *page(items, p, name_key="ModelName"))

    def op_CreateEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        arn = self.arn("endpoint-config", name)
        with self._lock:
            if name in self._configs:
                raise ServiceError(
                    "ValidationException",
                    f'Cannot create already existing endpoint configuration "{arn}".',
                )
            for variant in p["ProductionVariants"]:
                if variant["ModelName"] not in self._models:
                    raise ServiceError(
                        "ValidationException",
                        f'Could not find model "{self.arn("model", variant["ModelName"])}".',
                    )
            self._configs[name] = {"request": p, "arn": arn, "created": now()}
        self._put_tags(arn, p.get("Tags"))
        return {"EndpointConfigArn": arn}

    def op_DescribeEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        with self._lock:
            config = self._configs.get(name)
        if config is None:
            raise ServiceError(
                "ValidationException",
                f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".',
            )
        out = {
            "EndpointConfigName": name,
            "EndpointConfigArn": config["arn"],
            "ProductionVariants": config["request"]["ProductionVariants"],
            "CreationTime": config["created"],
        }
        # The optional parts of the request, as DescribeEndpointConfig shows them.
        for key in ("AsyncInferenceConfig", "DataCaptureConfig", "KmsKeyId"):
            if config["request"].get(key):
                out[key] = config["request"][key]
        return out

    def op_DeleteEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        with self._lock:
            if self._configs.pop(name, None) is None:
                raise ServiceError(
                    "ValidationException",
                    f'Could not find endpoint configuration "{self.arn("endpoint-config", name)}".',
                )
        return {}

    def op_ListEndpointConfigs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {
                    "EndpointConfigName": n,
                    "EndpointConfigArn": c["arn"],
                    "CreationTime": c["created"],
                }
                for n, c in self._configs.items()
            ]
        return listing("EndpointConfigs", *page(items, p, name_key="EndpointConfigName"))

    # -- endpoints ------------------------------------------------------------------

    def _model_artifact_for_config(self, config_name: str) -> str:
        with self._lock:
            config = self._configs.get(config_name)
            if config is None:
                raise ServiceError(
                    "ValidationException",
                    "Could not find endpoint configuration "
                    f'"{self.arn("endpoint-config", config_name)}".',
                )
            model_name = config["request"]["ProductionVariants"][0]["ModelName"]
            model = self._models.get(model_name)
        if model is None:
            raise RuntimeError(f"model {model_name} no longer exists")
        url: str = model["request"]["PrimaryContainer"]["ModelDataUrl"]
        return url

    def _load_into(self, endpoint: Endpoint, config_name: str, updating: bool) -> None:
        fault_key = "endpoint_update_failed" if updating else "endpoint_create_failed"
        try:
            fault = self._take_fault(fault_key)
            if fault is not None:
                raise RuntimeError(fault)
            url = self._model_artifact_for_config(config_name)
            bucket, key = split_s3(url)
            dest = self.work_dir / "models" / f"{endpoint.name}-{config_name}"
            dest.mkdir(parents=True, exist_ok=True)
            artifact = dest / "model.tar.gz"
            self.s3.download_file(bucket, key, str(artifact))
            with tarfile.open(artifact):  # must be a readable archive
                pass
            if updating and endpoint.deployment_config is not None:
                self.runtime.stage(endpoint.name, artifact)  # the new fleet takes its share
                try:
                    fired = self._guard_update(endpoint)
                finally:
                    self.runtime.unstage(endpoint.name)
                if fired is not None:
                    self._roll_back(endpoint, config_name, fired)
                    return
            with self._lock:
                request = self._configs.get(config_name, {}).get("request", {})
            serverless = is_serverless(request.get("ProductionVariants", []))
            self.backend.load_endpoint_model(
                endpoint.name, artifact, SERVERLESS_MAX_BODY_BYTES if serverless else None
            )
            with self._lock:
                endpoint.async_config = request.get("AsyncInferenceConfig")
                endpoint.config_name = config_name
                endpoint.status = "InService"
                endpoint.failure_reason = None
                endpoint.pending_config = None
                endpoint.modified = now()
        except Exception as e:
            with self._lock:
                reason = f"{type(e).__name__}: {e}"
                endpoint.failure_reason = reason
                endpoint.pending_config = None
                endpoint.modified = now()
                # A failed update rolls back: the old config keeps serving.
                endpoint.status = "InService" if updating else "Failed"
        self.on_event("endpoint", {"endpoint": endpoint.name, "status": endpoint.status})

    def _guard_update(self, endpoint: Endpoint) -> str | None:
        """Shift traffic by the DeploymentConfig; the alarm that fired, or None."""

        def quiet(_names: list[str]) -> list[str]:
            return []  # no CloudWatch: nothing can fire

        check = quiet if self.cloudwatch is None else cloudwatch_alarm_check(self.cloudwatch)

        def step(percent: int) -> None:
            with self._lock:
                endpoint.traffic_percent = percent

        with self._lock:
            config = self._configs.get(endpoint.pending_config or "") or {}
        variants = (config.get("request") or {}).get("ProductionVariants") or [{}]
        return shift_traffic(
            endpoint.deployment_config,
            alarms_in_alarm=check,
            bake_seconds=self.bake_seconds,
            on_step=step,
            instances=int(variants[0].get("InitialInstanceCount") or 1),
        )

    def _roll_back(self, endpoint: Endpoint, config_name: str, alarm: str) -> None:
        """As SageMaker: RollingBack, then InService on the old config."""
        with self._lock:
            endpoint.status = "RollingBack"
            endpoint.modified = now()
        time.sleep(min(self.bake_seconds, 0.2))
        with self._lock:
            endpoint.status = "InService"
            endpoint.pending_config = None
            endpoint.traffic_percent = None
            endpoint.failure_reason = (
                f"Deployment of {config_name} was rolled back: alarm {alarm} is in ALARM; "
                f"{endpoint.config_name} still serves"
            )
            endpoint.modified = now()
        self.on_event("endpoint", {"endpoint": endpoint.name, "status": "RolledBack"})

    def op_CreateEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        arn = self.arn("endpoint", name)
        with self._lock:
            if name in self._endpoints:
                raise ServiceError(
                    "ValidationException", f'Cannot create already existing endpoint "{arn}".'
                )
            if p["EndpointConfigName"] not in self._configs:
                raise ServiceError(
                    "ValidationException",
                    "Could not find endpoint configuration "
                    f'"{self.arn("endpoint-config", p["EndpointConfigName"])}".',
                )
            endpoint = Endpoint(
                name=name,
                arn=arn,
                config_name=p["EndpointConfigName"],
                status="Creating",
                created=now(),
                modified=now(),
            )
            self._endpoints[name] = endpoint
        self._put_tags(arn, p.get("Tags"))
        self._start(lambda: self._load_into(endpoint, p["EndpointConfigName"], False), f"ep-{name}")
        return {"EndpointArn": arn}

    def async_config(self, endpoint_name: str) -> dict[str, Any] | None:
        """The ``AsyncInferenceConfig`` of an in-service endpoint (``None``: it
        has none). :class:`LookupError` when there is no endpoint in service."""
        with self._lock:
            endpoint = self._endpoints.get(endpoint_name)
            if endpoint is None or endpoint.status not in ("InService", "Updating"):
                raise LookupError(endpoint_name)
            return dict(endpoint.async_config) if endpoint.async_config else None

    def _endpoint(self, name: str) -> Endpoint:
        with self._lock:
            endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise ServiceError(
                "ValidationException", f'Could not find endpoint "{self.arn("endpoint", name)}".'
            )
        return endpoint

    def op_UpdateEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(p["EndpointName"])
        with self._lock:
            if endpoint.status != "InService":
                raise ServiceError(
                    "ValidationException",
                    f'Cannot update in-progress endpoint "{endpoint.arn}".'
                    if endpoint.status != "Failed"
                    else f'Cannot update failed endpoint "{endpoint.arn}".',
                )
            if p["EndpointConfigName"] not in self._configs:
                raise ServiceError(
                    "ValidationException",
                    "Could not find endpoint configuration "
                    f'"{self.arn("endpoint-config", p["EndpointConfigName"])}".',
                )
            if p["EndpointConfigName"] == endpoint.config_name:
                raise ServiceError(
                    "ValidationException",
                    "Cannot update endpoint with the same endpoint configuration "
                    f'"{endpoint.config_name}" it is using.',
                )
            endpoint.status = "Updating"
            endpoint.pending_config = p["EndpointConfigName"]
            endpoint.deployment_config = p.get("DeploymentConfig")
            endpoint.traffic_percent = None
            endpoint.modified = now()
        self._start(
            lambda: self._load_into(endpoint, p["EndpointConfigName"], True), f"ep-{endpoint.name}"
        )
        return {"EndpointArn": endpoint.arn}

    def op_DescribeEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(p["EndpointName"])
        with self._lock:
            out: dict[str, Any] = {
                "EndpointName": endpoint.name,
                "EndpointArn": endpoint.arn,
                "EndpointConfigName": endpoint.config_name,
                "EndpointStatus": endpoint.status,
                "CreationTime": endpoint.created,
                "LastModifiedTime": endpoint.modified,
            }
            variants = self._variant_summaries(endpoint)
            if variants:
                out["ProductionVariants"] = variants
            if endpoint.failure_reason:
                out["FailureReason"] = endpoint.failure_reason
            if endpoint.async_config:
                out["AsyncInferenceConfig"] = endpoint.async_config
            if endpoint.deployment_config is not None:
                out["LastDeploymentConfig"] = endpoint.deployment_config
            if endpoint.pending_config is not None:
                # As SageMaker reports an update in progress.
                out["PendingDeploymentSummary"] = {
                    "EndpointConfigName": endpoint.pending_config,
                    "StartTime": endpoint.modified,
                }
        return out

    def _variant_summaries(self, endpoint: Endpoint) -> list[dict[str, Any]]:
        """DescribeEndpoint's ``ProductionVariants`` once the config serves."""
        if endpoint.status not in ("InService", "Updating", "SystemUpdating", "RollingBack"):
            return []
        config = self._configs.get(endpoint.config_name)
        if config is None:
            return []
        out = []
        for variant in config["request"]["ProductionVariants"]:
            model = self._models.get(variant["ModelName"], {}).get("request", {})
            image = (model.get("PrimaryContainer") or {}).get("Image")
            summary: dict[str, Any] = {
                "VariantName": variant["VariantName"],
                "CurrentWeight": float(variant.get("InitialVariantWeight", 1.0)),
                "DesiredWeight": float(variant.get("InitialVariantWeight", 1.0)),
            }
            serverless = variant.get("ServerlessConfig")
            if serverless:
                # A serverless variant has no instances: AWS shows its config instead.
                summary["CurrentServerlessConfig"] = dict(serverless)
                summary["DesiredServerlessConfig"] = dict(serverless)
            else:
                count = variant.get("InitialInstanceCount", 1)
                summary["CurrentInstanceCount"] = count
                summary["DesiredInstanceCount"] = count
            if image:
                summary["DeployedImages"] = [
                    {
                        "SpecifiedImage": image,
                        "ResolvedImage": image,
                        "ResolutionTime": endpoint.modified,
                    }
                ]
            out.append(summary)
        return out

    def op_DeleteEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        with self._lock:
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                raise ServiceError(
                    "ValidationException",
                    f'Could not find endpoint "{self.arn("endpoint", name)}".',
                )
            # Like SageMaker: Deleting for a moment, then gone.
            endpoint.status = "Deleting"
            endpoint.modified = now()
        self.backend.unload_endpoint_model(name)

        def finish() -> None:
            time.sleep(self.delete_seconds)
            with self._lock:
                if self._endpoints.get(name) is endpoint:
                    del self._endpoints[name]

        self._start(finish, f"delete-{name}")
        return {}

    def op_ListEndpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {
                    "EndpointName": e.name,
                    "EndpointArn": e.arn,
                    "EndpointStatus": e.status,
                    "CreationTime": e.created,
                    "LastModifiedTime": e.modified,
                }
                for e in self._endpoints.values()
            ]
        chunk, token = page(items, p, name_key="EndpointName", status_key="EndpointStatus")
        return listing("Endpoints", chunk, token)
