"""What may change in a CAS's ``spec.persistence`` once its claim exists.

A PersistentVolumeClaim's class and access modes are fixed, and a volume never shrinks: such a
change could only be applied by deleting the claim, and with it the CAS database. Disabling
persistence would do the same. So the API server refuses these changes (CEL transition rules,
which see the old object as ``oldSelf``) with a message that says what to do instead, rather
than the operator failing an upgrade later. Growing the volume, moving the mount path and any
change while persistence is off stay allowed.
"""

from __future__ import annotations

from enclave_operator.api.schema import Schema, rule

_WAS_ON = "has(oldSelf.enabled) && oldSelf.enabled"
_RECREATE = (
    "; to change it, back up the CAS database, delete this CAS and create it anew with the new"
    " settings"
)
DISABLE_MESSAGE = (
    "persistence cannot be disabled once enabled: the database on the claim would be lost"
    + _RECREATE
)
STORAGE_CLASS_MESSAGE = "storageClass cannot be changed while persistence is enabled" + _RECREATE
ACCESS_MODES_MESSAGE = "accessModes cannot be changed while persistence is enabled" + _RECREATE
SHRINK_MESSAGE = (
    "size cannot be made smaller while persistence is enabled (a volume can only grow)" + _RECREATE
)


def _size(side: str) -> str:
    """The size as a quantity: the field takes an integer or a string."""
    return f"(type({side}.size) == int ? quantity(string({side}.size)) : quantity({side}.size))"


def persistence_transitions() -> list[Schema]:
    """The transition rules of ``spec.persistence``; they apply only to updates."""
    return [
        rule(
            f"!({_WAS_ON}) || (has(self.enabled) && self.enabled)",
            DISABLE_MESSAGE,
            field_path=".enabled",
            reason="FieldValueForbidden",
        ),
        rule(
            f"!({_WAS_ON}) || (has(self.storageClass) == has(oldSelf.storageClass)"
            " && (!has(self.storageClass) || self.storageClass == oldSelf.storageClass))",
            STORAGE_CLASS_MESSAGE,
            field_path=".storageClass",
            reason="FieldValueForbidden",
        ),
        rule(
            f"!({_WAS_ON}) || (has(self.accessModes) == has(oldSelf.accessModes)"
            " && (!has(self.accessModes) || self.accessModes == oldSelf.accessModes))",
            ACCESS_MODES_MESSAGE,
            field_path=".accessModes",
            reason="FieldValueForbidden",
        ),
        rule(
            f"!({_WAS_ON}) || !has(self.size) || !has(oldSelf.size)"
            f" || !{_size('self')}.isLessThan({_size('oldSelf')})",
            SHRINK_MESSAGE,
            field_path=".size",
            reason="FieldValueForbidden",
        ),
    ]
