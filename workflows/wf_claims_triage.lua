-- workflows/wf_claims_triage.lua — WF-CLAIMS-001, insurance claim triage.
-- Besides being a workflow of its own, it is the tour of the guardian
-- helpers that docs/workflows.md quotes: TTL_CHECK, CRITERIA_GATE in its
-- three forms, CONDITIONAL_INJECTOR, DIRECTIONAL_FILTER, COMPOSITE, LUA,
-- an explicit component and an explicit guardian.
return workflow "WF-CLAIMS-001" {
  description = "Insurance claim triage by region with adjusters",
  max_interactions = 20,

  interactions = {
    interaction "claims" {
      description = "Submitted claims: amount, currency, region, submitted_at",
      stale_token_limit_seconds = 172800,
    },
    "assessed", "eu_claims", "us_claims", "settled", "ate", "chronos",
  },

  roles = {
    alpha "claim-intake" { outbound = { "claims" } },

    beta "triage" {
      description = "Scores the claim; gets model hints for large claims",
      inbound = { {
        "claims",
        guards = {
          ttl "fresh-claim" { field = "submitted_at", max_age_seconds = 604800 },
          criteria "positive-amount" { field = "amount", operator = "GT", threshold = 0 },
          injector "large-claim-context" {
            rules = {
              { when = "amount > 10000",
                inject = { model = "claims-large-v2",
                           instructions = "Check the policy limits before scoring." } },
            },
          },
        },
      } },
      outbound = { "assessed" },
      step = function(token)
        local score = token.amount > 10000 and "high" or "normal"
        return { set = { risk = score }, reasoning = "risk by amount" }
      end,
    },

    beta "route-claim" {
      description = "Sends each claim to the adjusters of its region",
      inbound = { "assessed" },
      outbound = {
        { "eu_claims", guard = directional "by-region" {
          field = "region", routes = { EU = "eu_claims", US = "us_claims" },
          default = "eu_claims" } },
        "us_claims",
      },
    },

    beta "eu-adjuster" {
      inbound = { { "eu_claims", guard = composite "eu-eligible" {
        op = "AND",
        criteria { field = "currency", operator = "IN", threshold = { "EUR", "GBP", "CHF" } },
        lua_guard(function(token) return token.policy_active == true end),
      } } },
      outbound = { "settled" },
    },

    beta "us-adjuster" {
      inbound = { { "us_claims", guard = criteria "us-policy" "policy_state != null" } },
    },

    omega "settle" { inbound = { { "settled", guard = cerberus "settlement-join" } } },

    epsilon "claims-physician" {
      inbound = { { "ate", guard = lua_guard "failed-only" (function(token)
        return token.status == "FAILED"
      end) } },
      outbound = { "settled" },
    },

    tau "claims-clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },

  components = {
    component "us-settlement" {
      role = "us-adjuster", interaction = "settled", direction = "OUTBOUND",
      description = "US adjusters settle into the same Cerberus room",
    },
  },

  guardians = {
    guardian "amount-cap" {
      component = "settle:in:settled", type = "CRITERIA_GATE",
      description = "Settlements above one million need the board, not this workflow",
      config = { field = "amount", operator = "LTE", threshold = 1000000 },
    },
  },

  actors = {
    actor "system" { type = "SYSTEM", roles = { "triage", "claim-intake" } },
    actor "router" { type = "AI_AGENT", roles = { "route-claim" },
                     capabilities = { skills = { "region-classifier" } } },
    actor "eu-team" { type = "HUMAN", roles = { "eu-adjuster" } },
    actor "us-team" { type = "HUMAN", roles = { "us-adjuster", { "eu-adjuster", status = "REVOKED" } } },
    actor "claims-lead" { type = "HUMAN", roles = { "claims-physician", "settle", "claims-clock" } },
  },
}
