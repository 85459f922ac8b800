"""Records -> ServiceTitan JSON, field for field as the OpenAPI documents define each response
(accounting money as strings, inventory and CRM money as numbers, seven-digit timestamps).

``render(data, kind, row, export=False)`` is the one entry point; export rows differ only where
the spec says so (inventory bills gain ``active``).
"""

from __future__ import annotations

from simulators.servicetitan.model import (
    BillRow,
    BusinessUnitRow,
    CustomerRow,
    GLAccountRow,
    InvoiceRow,
    LocationRow,
    PaymentRow,
    PaymentTypeRow,
    PurchaseOrderRow,
    ReceiptRow,
    TenantData,
    VendorRow,
    line_total,
)
from simulators.servicetitan.wire import day_ts, money, number, qty, ts

PAYMENT_TYPE_NAMES = {1: "Cash", 2: "Check", 3: "Credit Card", 4: "ACH"}


def _named(row_id: int | None, name: str | None) -> dict | None:
    return None if row_id is None else {"id": row_id, "name": name}


def _gl_ref(data: TenantData, number_: str, with_id: bool = True) -> dict | None:
    gl = data.gl_by_number.get(number_)
    if gl is None:
        return None
    ref = {"id": gl.id, "name": gl.name, "number": gl.number, "type": gl.type, "detailType": gl.subtype}
    if not with_id:
        del ref["id"]
    return ref


def _address(a, accounting: bool = True) -> dict:
    out = {"street": a.street, "unit": a.unit, "city": a.city, "state": a.state, "zip": a.zip, "country": "USA"}
    if not accounting:
        out["latitude"] = a.lat
        out["longitude"] = a.lon
    return out


def _unit_name(data: TenantData, bu_id: int | None) -> str | None:
    row = data.tables["business-units"].rows.get(bu_id) if bu_id is not None else None
    return row.name if row else None


def _name(data: TenantData, kind: str, row_id: int | None) -> str | None:
    row = data.tables[kind].rows.get(row_id) if row_id is not None else None
    return getattr(row, "name", None) if row else None


def business_unit(data: TenantData, r: BusinessUnitRow) -> dict:
    b = r.branch
    return {
        "id": r.id, "active": r.active, "name": r.name, "officialName": r.official_name,
        "email": f"{b.code.lower()}@{data.contractor.key}.example.com", "currency": "USD",
        "phoneNumber": "5550100" + str(r.id)[-3:], "invoiceHeader": None, "invoiceMessage": None,
        "defaultTaxRate": None, "authorizationParagraph": None, "acknowledgementParagraph": None,
        "address": {"street": f"{100 + r.id % 100} Main St", "unit": None, "city": b.city, "state": b.state,
                    "zip": f"{b.zip_prefix}01", "country": "USA", "latitude": None, "longitude": None,
                    "isManualCoordinates": False, "isMilitary": False},
        "materialSku": None, "quickbooksClass": None, "accountCode": f"{b.code[:3]}-{r.trade.code}",
        "franchiseId": None, "conceptCode": None, "corporateContractNumber": None,
        "trade": {"id": 1 + "HVCPLMELC".index(r.trade.code) // 3, "name": r.trade.name},
        "division": {"id": 1 + data.contractor.branches.index(b), "name": b.name},
        "tagTypeIds": [], "tenant": {"id": data.tenant_id, "name": data.contractor.name, "accountCode": None,
                                     "franchiseId": None, "conceptCode": None, "modifiedOn": ts(r.created)},
        "createdOn": ts(r.created), "modifiedOn": ts(r.modified), "externalData": [],
        "certifiedSentriconSpecialistCode": None,
    }


def gl_account(data: TenantData, r: GLAccountRow) -> dict:
    return {
        "id": r.id, "name": r.name, "number": r.number, "description": r.name, "type": r.type,
        "subtype": r.subtype, "active": r.active, "isIntacctGroup": False, "isIntacctBankAccount": False,
        "source": "AccountingSystem", "defaultAccountType": r.default_type,
        "createdOn": ts(r.created), "modifiedOn": ts(r.modified),
    }


def payment_type(data: TenantData, r: PaymentTypeRow) -> dict:
    return {"id": r.id, "name": r.name, "modifiedOn": ts(r.modified), "createdOn": ts(r.created)}


def customer(data: TenantData, r: CustomerRow) -> dict:
    return {
        "id": r.id, "active": r.active, "name": r.name, "type": r.type, "address": _address(r.address, False),
        "customFields": [], "balance": number(r.balance), "taxExempt": r.tax_exempt, "tagTypeIds": [],
        "doNotMail": r.do_not_mail, "doNotService": False, "nationalAccount": r.key_account,
        "createdOn": ts(r.created), "createdById": 1, "modifiedOn": ts(r.modified), "mergedToId": r.merged_to,
        "paymentTermId": None, "creditLimit": None, "creditLimitBalance": None, "externalData": [],
    }


def location(data: TenantData, r: LocationRow) -> dict:
    return {
        "id": r.id, "customerId": r.customer_id, "active": r.active, "name": r.name,
        "address": _address(r.address, False), "customFields": [], "createdOn": ts(r.created), "createdById": 1,
        "modifiedOn": ts(r.modified), "mergedToId": None, "zoneId": r.zone_id, "taxExempt": False,
        "tagTypeIds": [], "externalData": [], "taxZoneId": r.tax_zone_id,
    }


def vendor(data: TenantData, r: VendorRow) -> dict:
    return {
        "id": r.id, "name": r.name, "active": r.active, "isTruckReplenishment": False,
        "isMobileCreationRestricted": False, "memo": "", "deliveryOption": "Delivery",
        "defaultTaxRate": r.tax_rate_bp / 10000,
        "contactInfo": {"firstName": r.contact_first, "lastName": r.contact_last, "phone": r.phone,
                        "email": r.email, "fax": ""},
        "address": {"street": r.street, "unit": None, "city": r.city, "state": r.state, "zip": r.zip, "country": "USA"},
        "createdOn": ts(r.created), "modifiedOn": ts(r.modified), "externalData": [], "customFields": [],
    }


def invoice(data: TenantData, r: InvoiceRow) -> dict:
    cust = data.tables["customers"].rows.get(r.customer_id)
    loc = data.tables["locations"].rows.get(r.location_id)
    bu = _named(r.bu_id, _unit_name(data, r.bu_id))
    unit = data.tables["business-units"].rows.get(r.bu_id)
    zone = 100 + data.contractor.branches.index(unit.branch) if unit else None
    items = [{
        "id": i.id, "description": i.description, "quantity": qty(i.qty), "cost": money(i.cost),
        "totalCost": money((i.qty * i.cost + 50) // 100), "budgetCodeId": None, "inventoryLocationId": None,
        "inventoryLocation": None, "price": money(i.price), "type": i.type, "skuName": i.sku_name,
        "skuId": i.sku_id, "total": money(i.total), "inventory": i.type == "Material", "taxable": i.taxable,
        "isChargeable": True, "generalLedgerAccount": _gl_ref(data, i.account),
        "costOfSaleAccount": _gl_ref(data, "50000") if i.type == "Material" else None,
        "assetAccount": _gl_ref(data, "13000") if i.type == "Material" else None,
        "membershipTypeId": 0, "itemGroup": None, "displayName": i.sku_name, "soldHours": None,
        "createdOn": ts(i.created), "modifiedOn": ts(i.modified), "serviceDate": day_ts(r.day),
        "order": i.order, "businessUnit": bu, "createdById": 1, "displayInAmount": None, "importId": None,
        "exportId": None, "inventoryStatus": None, "addOn": False, "memberPrice": money(i.price),
        "technicianId": None, "installedEquipmentId": None, "estimateItemId": None,
    } for i in r.items]
    return {
        "id": r.id, "syncStatus": r.sync_status, "budgetCodeId": None, "referenceNumber": r.number,
        "invoiceDate": day_ts(r.day), "dueDate": day_ts(r.due_day), "subTotal": money(r.subtotal),
        "salesTax": money(r.tax),
        "salesTaxCode": {"id": zone, "name": f"{unit.branch.name} Sales Tax", "taxRate": r.tax_rate_bp / 10000}
        if unit and r.tax_rate_bp else None,
        "taxZoneId": zone, "total": money(r.total), "balance": money(r.balance),
        "invoiceType": None, "customer": _named(r.customer_id, cust.name if cust else None),
        "customerAddress": _address(cust.address) if cust else None,
        "location": _named(r.location_id, loc.name if loc else None),
        "locationAddress": _address(loc.address) if loc else None, "businessUnit": bu,
        "termName": "Net 30" if r.due_day > r.day else "Due Upon Receipt", "createdBy": r.created_by,
        "batch": None, "depositedOn": None, "createdOn": ts(r.created), "modifiedOn": ts(r.modified),
        "adjustmentToId": r.adjustment_to,
        "job": {"id": r.job_id, "number": r.job_number, "type": r.job_type} if r.job_id else None,
        "projectId": None, "royalty": {"status": "Pending", "date": None, "sentOn": None, "memo": None},
        "employeeInfo": {"id": 21, "name": r.created_by, "modifiedOn": ts(r.created)},
        "commissionEligibilityDate": None, "sentStatus": r.sent_status, "reviewStatus": r.review_status,
        "assignedTo": None, "summary": r.summary, "items": items, "customFields": [], "active": r.active,
        "discountTotal": money(-sum(i.total for i in r.items if i.type == "PriceModifier")),
        "importId": None, "exportId": None, "materialSkuId": None, "membershipId": None,
        "paidOn": ts(r.paid_on), "invoiceConfiguration": "JobInvoice",
    }


def payment(data: TenantData, r: PaymentRow) -> dict:
    invoices = data.tables["invoices"].rows
    ptype = data.tables["payment-types"].rows.get(r.type_id)
    applied = [{
        "appliedAmount": money(a.amount), "appliedBy": a.applied_by, "appliedId": a.applied_id,
        "appliedOn": ts(a.applied_on), "appliedTo": a.invoice_id,
        "appliedToReferenceNumber": invoices[a.invoice_id].number if a.invoice_id in invoices else None,
    } for a in r.applied]
    return {
        "active": r.active, "appliedTo": applied, "authCode": r.auth_code, "batch": None,
        "businessUnit": _named(r.bu_id, _unit_name(data, r.bu_id)), "checkNumber": r.check_number,
        "createdBy": r.created_by, "createdOn": ts(r.created),
        "customer": _named(r.customer_id, _name(data, "customers", r.customer_id)), "customFields": [],
        "date": day_ts(r.day), "deposit": None,
        "generalLedgerAccount": _gl_ref(data, ptype.cash_account) if ptype else None, "id": r.id,
        "memo": r.memo, "modifiedOn": ts(r.modified), "referenceNumber": r.number, "refundedPaymentId": None,
        "syncStatus": r.sync_status, "total": money(r.total),
        "type": ptype.name if ptype else PAYMENT_TYPE_NAMES.get(r.type_id), "typeId": str(r.type_id),
        "unappliedAmount": money(r.unapplied),
    }


def inventory_bill(data: TenantData, r: BillRow, export: bool = False) -> dict:
    account = "50000" if r.job_id else "13000"
    unit = data.tables["business-units"].rows.get(r.bu_id)
    po = data.tables["purchase-orders"].rows.get(r.po_id)
    items = [{
        "order": n, "name": line.name, "description": f"<p>{line.name}</p>", "quantity": qty(line.qty),
        "cost": money(line.cost), "allocatedTax": "0.00", "allocatedShipping": "0.00",
        "allocatedOtherCosts": "0.00", "fullyLandedUnitCost": money(line.cost), "inventoryLocation": "Main Warehouse",
        "serialNumber": None, "generalLedgerAccount": _gl_ref(data, account),
        "costOfSaleAccount": _gl_ref(data, "50000"), "assetAccount": _gl_ref(data, "13000"), "id": line.id,
        "skuId": line.sku_id, "receiptItemId": line.source_id, "skuType": "Material", "skuCode": line.code,
        "budgetCodeId": None,
    } for n, line in enumerate(r.lines, start=1)]
    out = {
        "id": r.id, "purchaseOrderId": r.po_id, "syncStatus": r.sync_status, "referenceNumber": r.number,
        "vendorNumber": r.vendor_invoice, "summary": f"Received against {po.number}" if po else None,
        "billDate": day_ts(r.day), "billAmount": money(r.amount), "taxAmount": money(r.tax),
        "shippingAmount": money(r.shipping), "landedCostMethod": "None", "otherAmount": "0.00",
        "createdBy": "warehouse", "createdOn": ts(r.created), "modifiedOn": ts(r.modified), "termName": "Net 30",
        "dueDate": day_ts(r.due_day), "shipToDescription": "Main Warehouse", "postDate": None, "batch": None,
        "businessUnit": _named(r.bu_id, unit.name if unit else None), "taxZone": None,
        "vendor": _named(r.vendor_id, _name(data, "vendors", r.vendor_id)),
        "shipTo": {"street": "1 Warehouse Rd", "unit": None, "city": unit.branch.city if unit else None,
                   "state": unit.branch.state if unit else None, "zip": None, "country": "USA"},
        "budgetCodeId": None, "items": items, "customFields": [], "jobId": r.job_id, "jobNumber": r.job_number,
        "dateReconciled": None,
    }
    if export:
        out["active"] = r.active
    return out


def _ship_to(data: TenantData, bu_id: int) -> dict:
    unit = data.tables["business-units"].rows.get(bu_id)
    return {"street": "1 Warehouse Rd", "unit": None, "city": unit.branch.city if unit else None,
            "state": unit.branch.state if unit else None, "zip": None, "country": "USA"}


def purchase_order(data: TenantData, r: PurchaseOrderRow) -> dict:
    items = [{
        "id": line.id, "skuId": line.sku_id, "description": f"<p>{line.name}</p>", "createdOn": ts(r.created),
        "modifiedOn": ts(r.modified), "skuName": line.name, "skuCode": line.code, "skuType": "Material",
        "vendorPartNumber": line.code.replace("MAT-", "VP-"), "quantity": line.qty / 100,
        "quantityReceived": line.received / 100, "cost": number(line.cost), "total": number(line_total(line)),
        "serialNumbers": [], "status": "Received" if line.received >= line.qty else
        ("PartiallyReceived" if line.received else "Pending"), "chargeable": r.job_id is not None,
        "budgetCodeId": None,
    } for line in r.lines]
    subtotal = sum(line_total(line) for line in r.lines)
    return {
        "id": r.id, "number": r.number, "invoiceId": None, "jobId": r.job_id, "projectId": None,
        "status": r.status, "typeId": 1, "vendorId": r.vendor_id, "technicianId": r.technician_id,
        "shipTo": _ship_to(data, r.bu_id), "businessUnitId": r.bu_id, "inventoryLocationId": 1,
        "batchId": None, "budgetCodeId": None, "vendorDocumentNumber": "", "date": day_ts(r.day),
        "requiredOn": day_ts(r.required_day), "sentOn": ts(r.sent), "receivedOn": ts(r.received),
        "createdOn": ts(r.created), "modifiedOn": ts(r.modified), "total": number(subtotal + r.tax + r.shipping),
        "tax": number(r.tax), "shipping": number(r.shipping), "createdById": 1, "summary": "",
        "items": items, "customFields": [],
    }


def receipt(data: TenantData, r: ReceiptRow) -> dict:
    account = "50000" if r.job_id else "13000"

    def gl(n: str) -> dict | None:
        return _gl_ref(data, n, with_id=False)

    items = [{
        "id": line.id, "skuId": line.sku_id, "name": line.name, "code": line.code,
        "description": f"<p>{line.name}</p>", "quantity": line.qty / 100, "cost": number(line.cost),
        "generalLedgerAccount": gl(account), "costOfSaleAccount": gl("50000"), "assetAccount": gl("13000"),
        "purchaseOrderItemId": line.source_id, "budgetCodeId": None, "allocatedShipping": None,
        "allocatedTax": None, "allocatedOtherCosts": None, "fullyLandedUnitCost": None,
    } for line in r.lines]
    return {
        "id": r.id, "active": r.active, "number": r.number, "vendorInvoiceNumber": r.vendor_invoice,
        "createdById": 1, "memo": "", "purchaseOrderId": r.po_id, "billId": r.bill_id, "jobId": r.job_id,
        "businessUnitId": r.bu_id, "vendorId": r.vendor_id, "technicianId": None, "inventoryLocationId": 1,
        "shipTo": _ship_to(data, r.bu_id), "shipToDescription": "Main Warehouse",
        "receiptAmount": number(sum(line_total(line) for line in r.lines)), "taxAmount": number(r.tax),
        "shippingAmount": number(r.shipping), "receivedOn": ts(r.received), "createdOn": ts(r.created),
        "modifiedOn": ts(r.modified), "batchId": None, "syncStatus": "Pending", "budgetCodeId": None,
        "landedCostMethod": "None", "otherAmount": None, "items": items, "customFields": [],
    }


RENDERERS = {
    "business-units": business_unit, "gl-accounts": gl_account, "payment-types": payment_type,
    "customers": customer, "locations": location, "vendors": vendor, "invoices": invoice, "payments": payment,
    "purchase-orders": purchase_order, "receipts": receipt,
}


def render(data: TenantData, kind: str, row, export: bool = False) -> dict:
    if kind == "inventory-bills":
        return inventory_bill(data, row, export)
    return RENDERERS[kind](data, row)
