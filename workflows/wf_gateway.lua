-- workflows/wf_gateway.lua — WF-ONBOARD-001, customer onboarding whose
-- "kyc" role is a recursive gateway: its work is a whole run of the child
-- workflow WF-KYC-001 (workflows/wf_child_kyc.lua) hosted in the same
-- instance. The child must be imported first.
return workflow "WF-ONBOARD-001" {
  description = "Customer onboarding with a KYC child workflow",

  interactions = {
    "applications", "collected", "kyc_passed", "activated", "ate", "chronos",
  },

  roles = {
    alpha "application" { outbound = { "applications" } },

    beta "collect" {
      inbound = { "applications" },
      outbound = { "collected" },
      step = function(token)
        if type(token.applicant_name) ~= "string" or token.applicant_name == "" then
          return { fail = "NO_NAME", reasoning = "application without a name" }
        end
        return { set = { applicant_name = string.upper(token.applicant_name) },
                 reasoning = "name normalized for screening" }
      end,
    },

    beta "kyc" {
      description = "Recursive gateway: runs WF-KYC-001 for this applicant",
      child_workflow = "WF-KYC-001",
      inbound = { "collected" },
      outbound = { "kyc_passed" },
    },

    beta "activate" {
      inbound = { "kyc_passed" },
      outbound = { "activated" },
      step = function()
        return { set = { account_status = "ACTIVE" }, reasoning = "KYC passed" }
      end,
    },

    omega "onboarded" { inbound = { { "activated", guard = cerberus "onboarding-join" } } },

    epsilon "onboarding-physician" {
      inbound = { { "ate", guard = pass_thru "all-failures" } },
      outbound = { "collected" },
    },

    tau "onboarding-clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },

  actors = {
    actor "system" {
      type = "SYSTEM",
      roles = { "application", "collect", "kyc", "activate", "onboarded", "onboarding-clock" },
    },
    actor "onboarding-desk" { type = "HUMAN", roles = { "onboarding-physician" } },
  },
}
