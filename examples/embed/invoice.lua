-- examples/embed/invoice.lua — the workflow examples/embed/embed.c runs.
-- An invoice enters at `intake` with its net amount in cents; the `price`
-- step asks the host's C skill `vat` (registered with chm_register_skill)
-- for the tax and records vat_cents and gross_cents; `book` (Omega) stamps
-- booked_at with the engine clock. An invoice the skill refuses fails to
-- the Ate, where the human `clerk` would pick it up.
return workflow "EX-INVOICE-001" {
  description = "Invoices taxed by a host skill, then booked",

  interactions = {
    interaction "invoices" { description = "New invoices: invoice, country, net_cents" },
    interaction "priced" { description = "The Cerberus room: invoices with VAT and gross" },
    "ate", "chronos",
  },

  roles = {
    alpha "intake" { outbound = { "invoices" } },

    beta "price" {
      description = "Computes vat_cents and gross_cents with the host's vat skill",
      inbound = { "invoices" },
      outbound = { "priced" },
      step = function(token, ctx)
        local r = ctx.skills.vat({ country = token.country, net_cents = token.net_cents })
        return { set = { vat_cents = r.vat_cents, gross_cents = token.net_cents + r.vat_cents },
                 reasoning = string.format("VAT at %d basis points", r.rate_bp) }
      end,
    },

    omega "book" {
      inbound = { { "priced", guard = cerberus "priced-join" } },
      step = function(_, ctx)
        return { set = { booked_at = ctx.now }, reasoning = "booked" }
      end,
    },

    epsilon "clerk" {
      inbound = { { "ate", guard = pass_thru "all-failures" } },
      outbound = { "priced" },
    },

    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },

  actors = {
    actor "system" { type = "SYSTEM", roles = { "intake", "price", "book" } },
    actor "clerk" { type = "HUMAN", roles = { "clerk", "clock" } },
  },
}
