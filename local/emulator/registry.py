"""The local SageMaker's model registry: Model Package Groups and their
versions, with approval status changes reported as the EventBridge event
SageMaker emits ("SageMaker Model Package State Change").

:class:`LocalSageMaker` dispatches the ``*ModelPackage*`` operations here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.emulator.paging import listing, page
from local.emulator.wire import now

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
DETAIL_TYPE = "SageMaker Model Package State Change"

StateChange = Callable[[dict[str, Any]], object]


class RegistryError(Exception):
    """Raised as the service's ValidationException / ResourceNotFound."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Group:
    name: str
    arn: str
    description: str
    created: float
    versions: list[str] = field(default_factory=list)


class ModelRegistry:
    """In-memory Model Package Groups and versions of one local account."""

    OPERATIONS = (
        "CreateModelPackageGroup",
        "DescribeModelPackageGroup",
        "ListModelPackageGroups",
        "DeleteModelPackageGroup",
        "CreateModelPackage",
        "DescribeModelPackage",
        "UpdateModelPackage",
        "ListModelPackages",
    )

    def __init__(self, *, region: str, account: str, put_tags: Callable[..., None]) -> None:
        self.region = region
        self.account = account
        self._put_tags = put_tags
        self._lock = threading.RLock()
        self._groups: dict[str, _Group] = {}
        self._packages: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, str] = {}
        #: Called with each "SageMaker Model Package State Change" event.
        self.on_state_change: StateChange = lambda event: None

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def handles(self, operation: str) -> bool:
        return operation in self.OPERATIONS

    def dispatch(self, operation: str, p: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = getattr(self, f"_{operation}")(p)
        return result

    # -- groups -------------------------------------------------------------------

    def _group(self, name_or_arn: str) -> _Group:
        name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        with self._lock:
            for group in self._groups.values():
                if group.name.lower() == name.lower():
                    return group
        raise RegistryError("ValidationException", f"Model Package Group {name} does not exist.")

    def _CreateModelPackageGroup(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelPackageGroupName"]
        arn = self._arn("model-package-group", name)
        with self._lock:
            if name.lower() in {g.lower() for g in self._groups}:
                raise RegistryError(
                    "ValidationException", f"Model Package Group already exists: {arn}"
                )
            self._groups[name] = _Group(name, arn, p.get("ModelPackageGroupDescription", ""), now())
        self._put_tags(arn, p.get("Tags"))
        return {"ModelPackageGroupArn": arn}

    def _describe_group(self, group: _Group) -> dict[str, Any]:
        return {
            "ModelPackageGroupName": group.name,
            "ModelPackageGroupArn": group.arn,
            "ModelPackageGroupDescription": group.description,
            "CreationTime": group.created,
            "CreatedBy": {},
            "ModelPackageGroupStatus": "Completed",
        }

    def _DescribeModelPackageGroup(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe_group(self._group(p["ModelPackageGroupName"]))

    def _ListModelPackageGroups(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            groups = [self._describe_group(g) for g in self._groups.values()]
        for g in groups:
            g.pop("CreatedBy")
        # NameContains (any case), creation-time bounds, SortBy Name|CreationTime
        # (default CreationTime, Ascending as documented), MaxResults/NextToken.
        chunk, token = page(groups, p, name_key="ModelPackageGroupName", default_order="Ascending")
        return listing("ModelPackageGroupSummaryList", chunk, token)

    def _DeleteModelPackageGroup(self, p: dict[str, Any]) -> dict[str, Any]:
        group = self._group(p["ModelPackageGroupName"])
        with self._lock:
            if group.versions:
                raise RegistryError(
                    "ConflictException",
                    f"Model Package Group {group.name} still has model packages.",
                )
            del self._groups[group.name]
        return {}

    # -- versions -----------------------------------------------------------------

    def _CreateModelPackage(self, p: dict[str, Any]) -> dict[str, Any]:
        if "ModelPackageGroupName" not in p:
            raise RegistryError(
                "ValidationException", "only versioned model packages are supported locally"
            )
        group = self._group(p["ModelPackageGroupName"])
        status = p.get("ModelApprovalStatus", "PendingManualApproval")
        if status not in APPROVAL_STATUSES:
            raise RegistryError("ValidationException", f"bad ModelApprovalStatus {status}")
        token = p.get("ClientToken")
        with self._lock:
            if token and token in self._tokens:  # idempotent retry: the same version
                return {"ModelPackageArn": self._tokens[token]}
            version = len(group.versions) + 1
            arn = self._arn("model-package", f"{group.name}/{version}")
            created = now()
            self._packages[arn] = {
                "ModelPackageName": group.name,
                "ModelPackageGroupName": group.name,
                "ModelPackageVersion": version,
                "ModelPackageArn": arn,
                "ModelPackageDescription": p.get("ModelPackageDescription", ""),
                "CreationTime": created,
                "LastModifiedTime": created,
                "InferenceSpecification": p.get("InferenceSpecification", {}),
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
                "CertifyForMarketplace": False,
                "ModelApprovalStatus": status,
                "ModelMetrics": p.get("ModelMetrics", {}),
                "CustomerMetadataProperties": dict(p.get("CustomerMetadataProperties") or {}),
            }
            group.versions.append(arn)
            if token:
                self._tokens[token] = arn
            event = self._event(self._packages[arn])
        # No tags of its own: a version uses its group's (ModelRegistry.tag_owner).
        self.on_state_change(event)
        return {"ModelPackageArn": arn}

    def tag_owner(self, arn: str) -> str:
        """Whose tags ``arn`` answers: a version's are its group's, as on AWS."""
        with self._lock:
            package = self._packages.get(arn.lower())
            if package is None:
                return arn
            return self._group(str(package["ModelPackageGroupName"])).arn

    def owns(self, arn: str) -> bool:
        """Whether ``arn`` names one of this registry's groups or versions."""
        with self._lock:
            return arn.lower() in self._packages or any(
                g.arn.lower() == arn.lower() for g in self._groups.values()
            )

    def is_version(self, arn: str) -> bool:
        """Whether ``arn`` names a registered version (it has its group's tags)."""
        with self._lock:
            return arn.lower() in self._packages

    def _package(self, name_or_arn: str) -> dict[str, Any]:
        with self._lock:
            package = self._packages.get(
                name_or_arn.lower() if name_or_arn.startswith("arn:") else ""
            )
            if package is None and not name_or_arn.startswith("arn:"):
                # An unversioned name is not supported; a group name means its latest.
                group = self._group(name_or_arn)
                package = self._packages[group.versions[-1]] if group.versions else None
        if package is None:
            raise RegistryError(
                "ValidationException", f"Model Package {name_or_arn} does not exist."
            )
        return package

    @staticmethod
    def _described(package: dict[str, Any]) -> dict[str, Any]:
        """A version as DescribeModelPackage answers it: like AWS, without an
        empty ``CustomerMetadataProperties`` (its shape wants at least one)."""
        out = dict(package)
        if not out.get("CustomerMetadataProperties"):
            out.pop("CustomerMetadataProperties", None)
        return out

    def _DescribeModelPackage(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._described(self._package(p["ModelPackageName"]))

    def _UpdateModelPackage(self, p: dict[str, Any]) -> dict[str, Any]:
        package = self._package(p["ModelPackageArn"])
        status = p.get("ModelApprovalStatus")
        if status is not None and status not in APPROVAL_STATUSES:
            raise RegistryError("ValidationException", f"bad ModelApprovalStatus {status}")
        with self._lock:
            changed = status is not None and status != package["ModelApprovalStatus"]
            if status is not None:
                package["ModelApprovalStatus"] = status
            if "ApprovalDescription" in p:
                package["ApprovalDescription"] = p["ApprovalDescription"]
            package["CustomerMetadataProperties"].update(p.get("CustomerMetadataProperties") or {})
            for key in p.get("CustomerMetadataPropertiesToRemove") or []:
                package["CustomerMetadataProperties"].pop(key, None)
            package["LastModifiedTime"] = now()
            event = self._event(package)
        if changed:
            self.on_state_change(event)
        return {"ModelPackageArn": package["ModelPackageArn"]}

    def _ListModelPackages(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                {
                    key: pkg[key]
                    for key in (
                        "ModelPackageName",
                        "ModelPackageGroupName",
                        "ModelPackageVersion",
                        "ModelPackageArn",
                        "ModelPackageDescription",
                        "CreationTime",
                        "ModelPackageStatus",
                        "ModelApprovalStatus",
                    )
                }
                for pkg in self._packages.values()
                if (
                    not p.get("ModelPackageGroupName")
                    or pkg["ModelPackageGroupName"].lower()
                    == str(p["ModelPackageGroupName"]).rsplit("/", 1)[-1].lower()
                )
                and (
                    not p.get("ModelApprovalStatus")
                    or pkg["ModelApprovalStatus"] == p["ModelApprovalStatus"]
                )
            ]
        # ListModelPackages sorts by CreationTime, Ascending unless asked otherwise.
        chunk, token = page(items, p, name_key="ModelPackageName", default_order="Ascending")
        return listing("ModelPackageSummaryList", chunk, token)

    # -- for Search (local/emulator/search.py) ------------------------------------------------

    def described_groups(self) -> list[dict[str, Any]]:
        """Every group, as DescribeModelPackageGroup answers it."""
        with self._lock:
            return [self._describe_group(g) for g in self._groups.values()]

    def described_packages(self) -> list[dict[str, Any]]:
        """Every version, as DescribeModelPackage answers it."""
        with self._lock:
            return [self._described(p) for p in self._packages.values()]

    # -- events -------------------------------------------------------------------

    def _event(self, package: dict[str, Any]) -> dict[str, Any]:
        """The EventBridge event SageMaker sends for a version's state change."""
        detail = {
            key: package[key]
            for key in (
                "ModelPackageGroupName",
                "ModelPackageVersion",
                "ModelPackageArn",
                "ModelPackageDescription",
                "ModelApprovalStatus",
                "ModelPackageStatus",
            )
        }
        detail["CreationTime"] = int(package["CreationTime"] * 1000)
        return {
            "version": "0",
            "id": f"local-{package['ModelPackageArn'].rsplit('/', 1)[-1]}-{int(now() * 1000)}",
            "detail-type": DETAIL_TYPE,
            "source": "aws.sagemaker",
            "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [package["ModelPackageArn"]],
            "detail": detail,
        }
