"""The reference of a pushed transfer names its ledger transaction, and only ours parse."""

from __future__ import annotations

import pytest

from gateway.sync.references import transaction_of, transfer_reference


def test_a_reference_names_its_transaction_both_ways():
    reference = transfer_reference("0b9c6f2e-7d1a-4c55-9a43-3f1f2f0d9e10")
    assert reference == "gw-txn-0b9c6f2e-7d1a-4c55-9a43-3f1f2f0d9e10"
    assert transaction_of(reference) == "0b9c6f2e-7d1a-4c55-9a43-3f1f2f0d9e10"


@pytest.mark.parametrize("reference", [None, "", "native-3", "gw-txn-", "GW-TXN-1", "x-gw-txn-1"])
def test_references_not_ours_name_no_transaction(reference):
    assert transaction_of(reference) is None
