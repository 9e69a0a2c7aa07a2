-- workflows/wf_child_kyc.lua — WF-KYC-001, the child workflow that
-- wf_gateway.lua runs through a recursive gateway: verify an applicant's
-- identity document, screen the name against a sanctions list, and send
-- hits to a compliance officer. Import it before WF-ONBOARD-001.
return workflow "WF-KYC-001" {
  description = "Know-your-customer check of one applicant",

  interactions = {
    "applicants", "verified", "flagged", "kyc_done", "ate", "chronos",
  },

  roles = {
    alpha "kyc-start" { outbound = { "applicants" } },

    beta "verify-identity" {
      inbound = { "applicants" },
      outbound = { "verified" },
      step = function(token)
        local id = token.id_document
        if type(id) ~= "string" or not string.match(id, "^%u%u%d%d%d%d%d%d+$") then
          return { fail = "ID_INVALID", reasoning = "identity document number malformed" }
        end
        return { set = { identity_verified = true }, reasoning = "document number well formed" }
      end,
    },

    beta "screen-sanctions" {
      inbound = { "verified" },
      outbound = { "kyc_done", "flagged" },
      step = function(token)
        local listed = { ["ACME SHELL LTD"] = true, ["J. DOE"] = true }
        local hit = listed[string.upper(tostring(token.applicant_name))] == true
        return { set = { sanctions_hit = hit }, reasoning = hit and "name listed" or "no hit" }
      end,
      routing = {
        branches = {
          { when = "sanctions_hit == false", to = "kyc_done" },
          { when = "sanctions_hit == true", to = "compliance-officer" },
        },
      },
    },

    beta "compliance-officer" {
      description = "Clears a false positive (set sanctions_cleared = true) or rejects",
      inbound = { "flagged" },
      outbound = { { "kyc_done", when = "sanctions_cleared == true" } },
    },

    omega "kyc-complete" { inbound = { { "kyc_done", guard = cerberus "kyc-join" } } },

    epsilon "kyc-physician" {
      inbound = { { "ate", guard = pass_thru "all-failures" } },
      outbound = { "flagged" },
    },

    tau "kyc-clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },

  actors = {
    actor "system" {
      type = "SYSTEM",
      roles = { "kyc-start", "verify-identity", "screen-sanctions", "kyc-complete", "kyc-clock" },
    },
    actor "compliance" {
      type = "HUMAN", identity_key = "SEC-M-001",
      roles = { "compliance-officer", "kyc-physician" },
    },
  },
}
