-- workflows/wf_fin_001.lua — seed 004's WF-FIN-001, Automated Invoice
-- Processing (§9): F-01 extract, F-02 PO match (tolerance 0.05, branching
-- as the next_step_logic of §12.2), F-03 handoff to the finance manager
-- FA-M-001, F-04 book, F-05 notify. Steps are self-contained Lua that stand
-- in for the seed's skills (SK-OCR-001 ... SK-COMM-005).
return workflow "WF-FIN-001" {
  description = "Automated Invoice Processing",
  ai_context = {
    objective = "Record invoices to GL with compliant PO matching and notifications",
    policy_tags = { "sox", "pii_redaction" },
  },
  max_interactions = 50,

  interactions = {
    interaction "invoices" {
      description = "New invoices: file_uri, document text, po_amount",
      stale_token_limit_seconds = 86400,
    },
    interaction "extracted" { description = "Invoices with vendor_id, amount and po_id" },
    interaction "to_review" { description = "PO mismatches waiting for the handoff" },
    interaction "manager_review" {
      description = "Handed-off invoices waiting for the finance manager",
      stale_token_limit_seconds = 28800,
    },
    interaction "to_booking" { description = "Invoices cleared for the general ledger" },
    interaction "booked" { description = "Booked invoices waiting for the vendor notice" },
    interaction "done" { description = "The Cerberus room" },
    interaction "ate" { description = "Failed and rejected invoices" },
    interaction "chronos" { description = "Stale invoices" },
  },

  roles = {
    alpha "intake" {
      description = "Receives an invoice (genesis) from the AP inbox",
      outbound = { "invoices" },
    },

    beta "F-01" {
      description = "data_extraction via SK-OCR-001: vendor_id, amount, po_id",
      inbound = { "invoices" },
      outbound = { "extracted" },
      step = function(token)
        local text = token.document
        if type(text) ~= "string" then
          return { fail = "NO_DOCUMENT", reasoning = "the invoice carries no document text" }
        end
        local vendor = string.match(text, "[Vv]endor:%s*([%w%-]+)")
        local amount = tonumber(string.match(text, "[Aa]mount:%s*([%d%.]+)"))
        local po = string.match(text, "PO:%s*([%w%-]+)")
        if not (vendor and amount and po) then
          return { fail = "EXTRACTION_INCOMPLETE",
                   reasoning = "vendor, amount or PO number not found in the document" }
        end
        return { set = { vendor_id = vendor, amount = amount, po_id = po },
                 reasoning = "SK-OCR-001 extracted vendor_id, amount and po_id" }
      end,
    },

    beta "F-02" {
      description = "logic_check via SK-LOGIC-003: po_match with tolerance 0.05",
      inbound = { "extracted" },
      outbound = { "to_booking", "to_review" },
      step = function(token)
        local tolerance = 0.05
        local amount, expected = tonumber(token.amount), tonumber(token.po_amount)
        if not amount or not expected or expected <= 0 then
          -- No output: the branch expressions fail and on_error applies.
          return { reasoning = "no PO amount to match against" }
        end
        local variance = math.abs(amount - expected) / expected
        return {
          set = { output = { check = "po_match", pass = variance <= tolerance,
                             variance = variance, tolerance = tolerance } },
          reasoning = string.format("variance %.4f against tolerance %.2f", variance, tolerance),
        }
      end,
      next_step_logic = {
        ["if"] = {
          { expr = "output.pass == true", ["goto"] = "F-04" },
          { expr = "output.pass == false", ["goto"] = "F-03" },
        },
        on_error = "F-03",
      },
    },

    beta "F-03" {
      description = "handoff via SK-COMM-004: PO_MISMATCH to FA-M-001",
      inbound = { "to_review" },
      outbound = { "manager_review" },
      step = function(token)
        return {
          set = { handoff = { reason = "PO_MISMATCH", owner = "FA-M-001",
                              vendor_id = token.vendor_id, po_id = token.po_id,
                              amount = token.amount } },
          reasoning = "PO mismatch handed off to the finance manager with state carried over",
        }
      end,
    },

    beta "FA-M-001" {
      description = "Finance Manager: approves (manager_decision = 'approve') or rejects",
      inbound = { "manager_review" },
      outbound = { { "to_booking", when = "manager_decision == 'approve'" } },
    },

    beta "F-04" {
      description = "tool_call via SK-ERP-002: Book_Invoice in SAP",
      inbound = { "to_booking" },
      outbound = { "booked" },
      step = function(token)
        return {
          set = { booking = { system = "SAP", action = "Book_Invoice",
                              reference = "GL-" .. tostring(token.po_id),
                              amount = token.amount } },
          reasoning = "invoice booked to the general ledger",
        }
      end,
    },

    beta "F-05" {
      description = "notify via SK-COMM-005: email to the vendor",
      inbound = { "booked" },
      outbound = { "done" },
      step = function(token)
        return {
          set = { notification = { channel = "email", recipient = "vendor",
                                   vendor_id = token.vendor_id,
                                   template = "invoice_booked" } },
          reasoning = "vendor notified",
        }
      end,
    },

    omega "close" {
      description = "Finalizes a processed invoice",
      inbound = { { "done", guard = cerberus "invoice-complete" } },
      step = function()
        return { reasoning = "invoice processed" }
      end,
    },

    epsilon "physician" {
      description = "AP specialist: retry from the PO match, or close as remediated",
      inbound = { { "ate", guard = criteria "failed-only" {
        field = "status", operator = "EQ", threshold = "FAILED" } } },
      outbound = { "extracted", "done" },
      routing = {
        branches = { { when = "remediation == 'retry'", to = "extracted" } },
        default = "done",
      },
    },

    tau "chronometer" {
      description = "Escalates stale invoices to the physician",
      inbound = { "chronos" },
      outbound = { "ate" },
      -- The token is ACTIVE under Tau while this runs, so its status says
      -- nothing about why it came: it waited past its interaction's limit
      -- (TIMEOUT) or its holder's lease lapsed.
      step = function()
        return { set = { escalation = "TIMEOUT" },
                 reasoning = "no decision in time; escalated to the physician" }
      end,
    },
  },

  actors = {
    actor "system" {
      type = "SYSTEM",
      description = "Runs the automated steps",
      roles = { "F-01", "F-02", "F-03", "F-04", "F-05", "close", "chronometer" },
    },
    actor "ap-specialist" {
      type = "HUMAN", identity_key = "FA-IC-001",
      description = "Accounts Payable Specialist",
      roles = { "intake", "physician" },
    },
    actor "finance-manager" {
      type = "HUMAN", identity_key = "FA-M-001",
      description = "Finance Manager",
      roles = { "FA-M-001" },
    },
  },
}
