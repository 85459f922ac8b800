"""Field names and value kinds of the Default 24.200.001 contract for the entities the simulator
serves, in the simulator's own compact form (written by contract_gen.py; do not edit by hand).
Per type: 'Field:K' with K one of S D B I DT G (string, decimal, boolean, integer, date-time,
guid), '>Type' for a linked entity and '*Type' for a detail collection."""

CONTRACT_VERSION = "24.200.001"

TYPES: dict[str, str] = {
    "Account": (
        "AccountCD:S AccountClass:S AccountGroup:S AccountID:I Active:B CashAccount:B "
        "ChartOfAccountsOrder:I ConsolidationAccount:S CreatedDateTime:DT CurrencyID:S "
        "Description:S LastModifiedDateTime:DT PostOption:S RequireUnits:B RevaluationRateType:S "
        "Secured:B TaxCategory:S Type:S UseDefaultSubaccount:B"
    ),
    "ActivityDetail": (
        "Billable:B BillableOvertime:S BillableTime:S Category:S CostCode:S CreatedByID:S "
        "CreatedDateTime:DT LastModifiedDateTime:DT NoteID:G Overtime:S Owner:S Project:S "
        "ProjectTask:S RefNoteID:G Released:B StartDate:DT Status:S Summary:S TimeSpent:S Type:S "
        "WorkgroupID:S"
    ),
    "Address": (
        "AddressLine1:S AddressLine2:S City:S Country:S PostalCode:S State:S Validated:B"
    ),
    "AttributeValue": (
        "AttributeDescription:S AttributeID:S IsActive:B RefNoteID:G Required:B Value:S "
        "ValueDescription:S"
    ),
    "BCRoleAssignment": (
        "BAccountID:I ContactID:I CreatedDateTime:DT LastModifiedDateTime:DT LocationCD:S Role:S "
        "RoleAssignmentID:I"
    ),
    "Bill": (
        "Amount:D Applications:*BillApplicationDetail ApprovedForPayment:B Balance:D BranchID:S "
        "CashAccount:S CurrencyID:S Date:DT Description:S Details:*BillDetail DueDate:DT Hold:B "
        "IsTaxValid:B LastModifiedDateTime:DT LocationID:S PostPeriod:S Project:S ReferenceNbr:S "
        "Status:S TaxDetails:*BillTaxDetail TaxTotal:D Terms:S Type:S Vendor:S VendorRef:S"
    ),
    "BillApplicationDetail": (
        "AmountPaid:D Balance:D DocType:S ReferenceNbr:S Status:S"
    ),
    "BillDetail": (
        "Account:S Amount:D Branch:S CalculateDiscountsOnImport:B CostCode:S Description:S "
        "ExtendedCost:D InventoryID:S LCLineNbr:I LCNbr:S LCType:S NonBillable:B POLine:I "
        "POOrderNbr:S POOrderType:S POReceiptLine:I POReceiptNbr:S POReceiptType:S Project:S "
        "ProjectTask:S Qty:D Subaccount:S TaxCategory:S TransactionDescription:S UOM:S UnitCost:D"
    ),
    "BillTaxDetail": (
        "TaxAmount:D TaxID:S TaxRate:D TaxableAmount:D"
    ),
    "BusinessAccountPaymentInstructionDetail": (
        "Description:S LocationID:I PaymentInstructionsID:S PaymentMethod:S Value:S"
    ),
    "CampaignDetail": (
        "CampaignID:S CampaignName:S ContactID:I Stage:S"
    ),
    "CaseDetail": (
        "CaseID:S ClassID:S ClosingDate:DT DateReported:DT Estimation:S InitialResponse:S Owner:S "
        "Reason:S Severity:S Status:S Subject:S Workgroup:S"
    ),
    "CompaniesStructure": (
        "Results:*CompaniesStructureDetail"
    ),
    "CompaniesStructureDetail": (
        "BaseCurrencyID:S BranchCountry:S BranchID:S BranchName:S BranchStatus:B CompanyID:S "
        "CompanyName:S CompanyStatus:B CompanyType:S"
    ),
    "Contact": (
        "Active:B Activities:*ActivityDetail Address:>Address AddressValidated:B Attention:S "
        "Attributes:*AttributeValue BusinessAccount:S Campaigns:*CampaignDetail Cases:*CaseDetail "
        "CompanyName:S ContactClass:S ContactID:I ContactMethod:S ConvertedBy:S DateOfBirth:DT "
        "DisplayName:S DoNotCall:B DoNotEmail:B DoNotFax:B DoNotMail:B Duplicate:S DuplicateFound:B "
        "Duplicates:*ContactDuplicateDetail Email:S ExtRefNbr:S Fax:S FaxType:S FirstName:S "
        "FullName:S Gender:S Image:S JobTitle:S LanguageOrLocale:S LastIncomingActivity:DT "
        "LastModifiedDateTime:DT LastName:S LastOutgoingActivity:DT MaritalStatus:S "
        "MarketingLists:*MarketingListDetail MiddleName:S NoMarketing:B NoMassMail:B NoteID:G "
        "Notifications:*ContactNotification Opportunities:*OpportunityDetail "
        "OverrideAccountAddress:B Owner:S OwnerEmployeeName:S ParentAccount:S Phone1:S Phone1Type:S "
        "Phone2:S Phone2Type:S Phone3:S Phone3Type:S QualificationDate:DT Reason:S "
        "Relations:*RelationDetail RoleAssignments:*BCRoleAssignment Source:S SourceCampaign:S "
        "SpouseOrPartnerName:S Status:S Synchronize:B Title:S Type:S UserInfo:>ContactUserInfo "
        "WebSite:S Workgroup:S WorkgroupDescription:S"
    ),
    "ContactDuplicateDetail": (
        "BusinessAccount:S BusinessAccountName:S BusinessAccountType:S DisplayName:S Duplicate:S "
        "Email:S LastModifiedDate:DT Type:S"
    ),
    "ContactNotification": (
        "Active:B Bcc:B ClassID:S Description:S Format:S MailingID:S Module:S NotificationID:I "
        "Report:S Source:S"
    ),
    "ContactRoles": (
        "RoleDescription:S RoleName:S Selected:B UserType:I"
    ),
    "ContactUserInfo": (
        "GeneratePassword:B Login:S Password:S Roles:*ContactRoles Status:S UserType:S"
    ),
    "CreditCardProcessingDetail": (
        "TransactionAmount:D TransactionStatus:S"
    ),
    "CreditCardTransactionDetail": (
        "AuthNbr:S CardType:S ExpirationDate:DT ExtProfileId:S NeedValidation:B OrigTranNbr:S "
        "TranDate:DT TranNbr:S TranType:S"
    ),
    "CreditVerificationRules": (
        "CreditDaysPastDue:I CreditLimit:D CreditVerification:S FirstDueDate:DT OpenOrdersBalance:D "
        "RemainingCreditLimit:D UnreleasedBalance:D"
    ),
    "Customer": (
        "AccountRef:S ApplyOverdueCharges:B Attributes:*AttributeValue AutoApplyPayments:B "
        "BAccountID:I BillingAddressOverride:B BillingContact:>Contact BillingContactOverride:B "
        "Contacts:*CustomerContact CreatedDateTime:DT CreditLimit:D "
        "CreditVerificationRules:>CreditVerificationRules CurrencyID:S CurrencyRateType:S "
        "CustomerCategory:S CustomerClass:S CustomerID:S CustomerName:S Email:S "
        "EnableCurrencyOverride:B EnableRateOverride:B EnableWriteOffs:B EntityUsageType:S "
        "FOBPoint:S IsGuestCustomer:B LastModifiedDateTime:DT LeadTimedays:I LocationName:S "
        "MainContact:>Contact MultiCurrencyStatements:B NoteID:G OrderPriority:I ParentRecord:S "
        "PaymentInstructions:*BusinessAccountPaymentInstructionDetail PriceClassID:S "
        "PrimaryContact:>Contact PrimaryContactID:I PrintDunningLetters:B PrintInvoices:B "
        "PrintStatements:B ResidentialDelivery:B RestrictVisibilityTo:S "
        "Salespersons:*CustomerSalesPerson SaturdayDelivery:B SendDunningLettersbyEmail:B "
        "SendInvoicesbyEmail:B SendStatementsbyEmail:B ShipVia:S ShippingAddressOverride:B "
        "ShippingBranch:S ShippingContact:>Contact ShippingContactOverride:B ShippingRule:S "
        "ShippingTerms:S ShippingZoneID:S StatementCycleID:S StatementType:S Status:S "
        "TaxExemptionNumber:S TaxRegistrationID:S TaxZone:S Terms:S WarehouseID:S WriteOffLimit:D"
    ),
    "CustomerContact": (
        "Contact:>Contact ContactID:I LastModifiedDateTime:DT"
    ),
    "CustomerSalesPerson": (
        "Commission:D Default:B LocationID:S LocationName:S Name:S SalespersonID:S"
    ),
    "DocContact": (
        "Attention:S BusinessName:S Email:S Phone1:S"
    ),
    "FinancialPeriod": (
        "CreatedDateTime:DT Details:*FinancialPeriodDetail FinancialYear:S LastModifiedDateTime:DT "
        "NbrOfPeriods:I StartDate:DT UserDefinedPeriods:B"
    ),
    "FinancialPeriodDetail": (
        "AdjustmentPeriod:B ClosedInAP:B ClosedInAR:B ClosedInCA:B ClosedInFA:B ClosedInIN:B "
        "Description:S EndDate:DT FinancialPeriodID:S LengthInDays:I PeriodNbr:S StartDate:DT "
        "Status:S"
    ),
    "FinancialYear": (
        "AdjustToPeriodStart:B BelongsToNextYear:B CreatedDateTime:DT DayOfWeek:S "
        "Details:*FinancialYearPeriodDetail FinancialYearStartsOn:DT FirstFinancialYear:S "
        "FirstPeriodStartDate:DT HasAdjustmentPeriod:B LastModifiedDateTime:DT "
        "LengthOfFinancialPeriodInDays:I NbrOfFinancialPeriods:I PeriodType:S "
        "PeriodsStartDayOfWeek:S UserDefinedPeriods:B YearEndCalculationMethod:S"
    ),
    "FinancialYearPeriodDetail": (
        "Description:S EndDate:DT PeriodNbr:S StartDate:DT"
    ),
    "Invoice": (
        "Amount:D ApplicationsCreditMemo:*InvoiceApplicationsCreditMemo "
        "ApplicationsDefault:*InvoiceApplicationsDefault Balance:D BillToContact:>DocContact "
        "BillToContactOverride:B BillingPrinted:B CreatedDateTime:DT Customer:S CustomerOrder:S "
        "Date:DT Description:S Details:*InvoiceDetail DiscountDetails:*InvoiceDiscountDetail "
        "DueDate:DT Hold:B IsTaxValid:B LastModifiedDateTime:DT LinkARAccount:S LinkBranch:S "
        "LocationID:S PostPeriod:S Project:S ReferenceNbr:S ShipToContact:>DocContact "
        "ShipToContactOverride:B Status:S TaxDetails:*InvoiceTaxDetail TaxTotal:D Terms:S Type:S"
    ),
    "InvoiceApplicationsCreditMemo": (
        "AmountPaid:D Balance:D Customer:S CustomerOrder:S Description:S DocType:S PostPeriod:S "
        "ReferenceNbr:S Status:S"
    ),
    "InvoiceApplicationsDefault": (
        "AmountPaid:D Balance:D CashDiscountTaken:D DocType:S PaymentDate:DT ReferenceNbr:S "
        "Status:S"
    ),
    "InvoiceDetail": (
        "Account:S Amount:D Branch:S CalculateDiscountsOnImport:B CostCode:S DiscountAmount:D "
        "ExtendedPrice:D InventoryID:S LastModifiedDateTime:DT LineNbr:I ProjectTask:S Qty:D "
        "Subaccount:S Subitem:S TaxCategory:S TransactionDescription:S UOM:S UnitPrice:D"
    ),
    "InvoiceDiscountDetail": (
        "Description:S DiscountAmount:D DiscountCode:S DiscountPercent:D DiscountableAmount:D "
        "DiscountableQty:D ExternalDiscountCode:S ManualDiscount:B OrderNbr:S OrderType:S "
        "RetainedDiscount:D SequenceID:S SkipDiscount:B Type:S"
    ),
    "InvoiceTaxDetail": (
        "TaxAmount:D TaxID:S TaxRate:D TaxableAmount:D"
    ),
    "Ledger": (
        "Branches:*LedgerBranches Companies:*LedgerCompanies ConsolidationSource:B Currency:S "
        "Description:S LastModifiedDateTime:DT LedgerID:S Type:S"
    ),
    "LedgerBranches": (
        "Active:B BranchID:S BranchName:S CompanyName:S"
    ),
    "LedgerCompanies": (
        "Active:B Company:S CompanyName:S CompanyType:S"
    ),
    "MarketingListDetail": (
        "ContactID:I DynamicList:B Format:S ListName:S MarketingListID:I Subscribed:B"
    ),
    "OpportunityDetail": (
        "Currency:S DisplayName:S Estimation:DT Owner:S Probability:I Stage:S Status:S Subject:S "
        "Total:D Workgroup:S"
    ),
    "Payment": (
        "ApplicationDate:DT ApplicationHistory:*PaymentApplicationHistoryDetail "
        "AppliedToDocuments:D AppliedToOrders:D AvailableBalance:D Branch:S BranchID:S "
        "CardAccountNbr:I CashAccount:S Charges:*PaymentCharge "
        "CreditCardProcessingInfo:*CreditCardProcessingDetail "
        "CreditCardTransactionInfo:*CreditCardTransactionDetail CurrencyID:S CustomerID:S "
        "CustomerLocationID:S Description:S DocumentsToApply:*PaymentDetail ExternalRef:S Hold:B "
        "IsCCPayment:B IsNewCard:B LastModifiedDateTime:DT NoteID:G "
        "OrdersToApply:*PaymentOrderDetail OrigTransaction:S PaymentAmount:D PaymentMethod:S "
        "PaymentRef:S ProcessingCenterID:S ReferenceNbr:S SaveCard:B Status:S Type:S"
    ),
    "PaymentApplicationHistoryDetail": (
        "AdjustedDocType:S AdjustedRefNbr:S AdjustingDocType:S AdjustingRefNbr:S AdjustmentNbr:I "
        "AdjustsVAT:B AmountPaid:D ApplicationPeriod:S Balance:D BalanceWriteOff:D BatchNbr:S "
        "CashDiscountBalance:D CashDiscountDate:DT CashDiscountTaken:D CurrencyID:S Customer:S "
        "CustomerOrder:S Date:DT Description:S DisplayDocType:S DisplayRefNbr:S DueDate:DT "
        "PostPeriod:S VATCreditMemo:S"
    ),
    "PaymentCharge": (
        "AccountID:S Amount:D Description:S DocType:S EntryTypeID:S LineNbr:I RefNbr:S SubID:S"
    ),
    "PaymentDetail": (
        "AmountPaid:D BalanceWriteOff:D CashDiscountTaken:D CustomerOrder:S Description:S "
        "DocLineNbr:I DocType:S ReferenceNbr:S WriteOffReasonCode:S"
    ),
    "PaymentMethod": (
        "Active:B AllowedCashAccounts:*PaymentMethodAllowedCashAccountDetail CreatedDateTime:DT "
        "Description:S IntegratedProcessing:B LastModifiedDateTime:DT MeansOfPayment:S "
        "PaymentMethodID:S ProcessingCenters:*PaymentMethodProcessingCenterDetail "
        "RequireRemittanceInformationforCashAccount:B SetPaymentDatetoBankTransactionDate:B "
        "SettingsForPR:>SettingsForPR UseInAP:B UseInAR:B UseInPR:B"
    ),
    "PaymentMethodAllowedCashAccountDetail": (
        "APDefault:B APLastRefNbr:S APSuggestNextNbr:B ARDefault:B ARDefaultForRefund:B "
        "ARLastRefNbr:S ARSuggestNextNbr:B BatchLastRefNbr:S Branch:S CashAccount:S Description:S "
        "LastModifiedDateTime:DT PaymentMethod:S UseInAP:B UseInAR:B UseInPR:B"
    ),
    "PaymentMethodProcessingCenterDetail": (
        "Active:B Default:B PaymentMethod:S ProcCenterID:S"
    ),
    "PaymentOrderDetail": (
        "AppliedToOrder:D OrderNbr:S OrderType:S"
    ),
    "RelationDetail": (
        "Account:S AddToCc:B ContactDisplayName:S ContactID:I Document:G DocumentDate:DT "
        "DocumentTargetNoteIDDescription:S Email:S Name:S Primary:B RelationID:I Role:S Type:S"
    ),
    "SettingsForPR": (
        "ExportScenario:S PRProcessing:S Report:S"
    ),
    "Subaccount": (
        "Active:B Description:S Secured:B SubaccountCD:S SubaccountID:I"
    ),
    "Vendor": (
        "APAccount:S APSubaccount:S AccountRef:S Attributes:*AttributeValue CashAccount:S "
        "Contacts:*CustomerContact CreatedDateTime:DT CurrencyID:S CurrencyRateType:S "
        "EnableCurrencyOverride:B EnableRateOverride:B F1099Box:S F1099Vendor:B FATCA:B FOBPoint:S "
        "ForeignEntity:B LandedCostVendor:B LastModifiedDateTime:DT LeadTimedays:I LegalName:S "
        "LocationName:S MainContact:>Contact MaxReceipt:D MinReceipt:D ParentAccount:S "
        "PaySeparately:B PaymentBy:S PaymentInstructions:*BusinessAccountPaymentInstructionDetail "
        "PaymentLeadTimedays:I PaymentMethod:S PrimaryContact:>Contact PrintOrders:B "
        "ReceiptAction:S ReceivingBranch:S RemittanceAddressOverride:B RemittanceContact:>Contact "
        "RemittanceContactOverride:B SendOrdersbyEmail:B ShipVia:S ShippingAddressOverride:B "
        "ShippingContact:>Contact ShippingContactOverride:B ShippingTerms:S Status:S "
        "TaxCalculationMode:S TaxRegistrationID:S TaxZone:S Terms:S ThresholdReceipt:D "
        "VendorClass:S VendorID:S VendorIsLaborUnion:B VendorIsTaxAgency:B VendorName:S Warehouse:S"
    ),
}
