-- workflows/wf_gov_001.lua — seed 004 §17.2, WF-GOV-001 Reviewer
-- Assignment: on reflection.proposed, map the proposal to mandatory review
-- domains (G-01), pick reviewers (G-02), notify them (G-03), wait for their
-- acknowledgement within 8 hours (G-04: ack -> G-05 record, timeout -> G-06
-- handoff to the QA manager QA-M-001). Stale tokens reach G-06 via Tau.
return workflow "WF-GOV-001" {
  description = "Reviewer Assignment: assign qualified reviewers, time-box the decision",
  ai_context = { trigger = "reflection.proposed",
                 goal = "Assign qualified reviewers, time-box decision, enforce SLAs" },

  interactions = {
    interaction "proposals" { description = "Proposals to review" },
    interaction "ruled" { description = "Proposals with required review domains" },
    interaction "selected" { description = "Proposals with reviewers chosen" },
    interaction "awaiting_ack" {
      description = "Reviewers notified; the 8 hour SLA window runs",
      stale_token_limit_seconds = 28800,
    },
    interaction "acked" { description = "Acknowledged assignments" },
    interaction "timed_out" { description = "Assignments nobody acknowledged in time" },
    interaction "qa_queue" {
      description = "Handoffs waiting for the QA manager",
      stale_token_limit_seconds = 86400,
    },
    "closed", "ate", "chronos",
  },

  roles = {
    alpha "proposal-intake" {
      description = "Genesis on reflection.proposed",
      outbound = { "proposals" },
    },

    beta "G-01" {
      description = "logic_check via SK-LOGIC-003: reviewer_rules on proposal_type, risk_score",
      inbound = { "proposals" },
      outbound = { "ruled" },
      step = function(token)
        local rules = {
          update_param = { "Business" },
          new_workflow = { "Security", "Data", "Business" },
          new_skill = { "Security", "Data" },
        }
        local domains = rules[token.proposal_type]
        if not domains then
          return { fail = "UNKNOWN_PROPOSAL_TYPE",
                   reasoning = "no reviewer rule for " .. tostring(token.proposal_type) }
        end
        local risk = tonumber(token.risk_score) or 1
        return { set = { required_domains = domains, external_reviewer = risk >= 0.7 },
                 reasoning = "mandatory domains from reviewer_rules; risk " .. risk }
      end,
    },

    beta "G-02" {
      description = "generate via SK-API-007 (WF-GOV-002-SelectReviewers): pick reviewers",
      inbound = { "ruled" },
      outbound = { "selected" },
      step = function(token)
        local pool = { Security = "rev-sec-1", Data = "rev-data-1", Business = "rev-biz-1" }
        local ids = {}
        for _, domain in ipairs(token.required_domains or {}) do
          ids[#ids + 1] = pool[domain]
        end
        if token.external_reviewer then ids[#ids + 1] = "rev-ext-1" end
        if #ids == 0 then
          return { fail = "NO_REVIEWERS", reasoning = "no reviewer matches the domains" }
        end
        return { set = { reviewer_ids = ids },
                 reasoning = "one independent reviewer per mandatory domain" }
      end,
    },

    beta "G-03" {
      description = "notify via SK-COMM-005: template assign to the reviewers",
      inbound = { "selected" },
      outbound = { "awaiting_ack" },
      step = function(token)
        return { set = { notification = { channel = "email", template = "assign",
                                          recipients = token.reviewer_ids } },
                 reasoning = "reviewers notified of their assignment" }
      end,
    },

    beta "G-04" {
      description = "branch (sla_ack, window 8 h): a reviewer acknowledges with ack = true",
      inbound = { "awaiting_ack" },
      outbound = { "acked", "timed_out" },
      next_step_logic = {
        ["if"] = {
          { expr = "ack == true", ["goto"] = "G-05" },
          { expr = "ack == false", ["goto"] = "G-06" },
        },
        on_error = "G-06",
      },
    },

    beta "G-05" {
      description = "record via SK-ERP-002: record_assignment in governance_db",
      inbound = { "acked" },
      outbound = { "closed" },
      step = function(token)
        return { set = { assignment_record = { system = "governance_db",
                                               action = "record_assignment",
                                               reviewers = token.reviewer_ids } },
                 reasoning = "assignment recorded" }
      end,
    },

    beta "G-06" {
      description = "handoff via SK-COMM-004: reviewer_timeout to QA-M-001",
      inbound = { "timed_out" },
      outbound = { "qa_queue" },
      step = function(token)
        return { set = { handoff = { reason = "reviewer_timeout", owner = "QA-M-001",
                                     reviewers = token.reviewer_ids } },
                 reasoning = "no acknowledgement within the SLA window" }
      end,
    },

    beta "QA-M-001" {
      description = "QA manager: reassigns reviewers by hand and closes the assignment",
      inbound = { "qa_queue" },
      outbound = { "closed" },
    },

    omega "assigned" {
      inbound = { { "closed", guard = cerberus "assignment-complete" } },
      step = function()
        return { reasoning = "reviewer assignment finished" }
      end,
    },

    epsilon "governance-physician" {
      description = "Repairs failed proposals and restarts them at G-01",
      inbound = { { "ate", guard = pass_thru "any-failure" } },
      outbound = { "proposals" },
    },

    tau "sla-clock" {
      description = "Sends assignments that outwaited their window to G-06",
      inbound = { "chronos" },
      outbound = { "timed_out" },
      step = function()
        return { set = { ack = false }, reasoning = "SLA window elapsed without acknowledgement" }
      end,
    },
  },

  actors = {
    actor "system" {
      type = "SYSTEM",
      roles = { "proposal-intake", "G-01", "G-02", "G-03", "G-05", "G-06", "assigned",
                "sla-clock" },
    },
    actor "reviewer" { type = "HUMAN", description = "Assigned reviewer", roles = { "G-04" } },
    actor "qa-manager" {
      type = "HUMAN", identity_key = "QA-M-001",
      roles = { "QA-M-001", "governance-physician" },
    },
  },
}
