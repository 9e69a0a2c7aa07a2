-- workflows/wf_fanout.lua — decomposition and the Cerberus join: a Beta
-- splits an order into one child token per order line (HOMOGENEOUS: every
-- child carries sku, qty and unit_price), the children are priced in
-- parallel, and Omega receives the order only when the CERBERUS guardian
-- on its inbound sees every child finished.
return workflow "WF-FANOUT-001" {
  description = "Order lines priced in parallel, joined before shipping",

  interactions = {
    interaction "orders" { description = "Orders with a list of lines" },
    interaction "lines" {
      description = "One child token per order line",
      stale_token_limit_seconds = 3600,
    },
    interaction "joined" {
      description = "The Cerberus room: the order and its priced lines",
      -- An order whose line was given up (ARCHIVED) can never be joined:
      -- the Cerberus rejects it and it goes FAILED to the Ate at once.
      -- An order left waiting here for a day times out to the line-clock.
      stale_token_limit_seconds = 86400,
    },
    "ate", "chronos",
  },

  roles = {
    alpha "order-intake" { outbound = { "orders" } },

    beta "split-lines" {
      description = "One child per order line; the order itself waits in the Cerberus room",
      strategy = "HOMOGENEOUS",
      inbound = { "orders" },
      outbound = { "joined", "lines" },
      step = function(token)
        local children = {}
        for i, line in ipairs(token.lines or {}) do
          -- HOMOGENEOUS: every child carries the same keys, so a missing value
          -- is false (price-line then fails that line, not the whole order)
          children[i] = { sku = line.sku or false, qty = line.qty or false,
                          unit_price = line.unit_price or false }
        end
        if #children == 0 then
          return { fail = "EMPTY_ORDER", reasoning = "the order has no lines" }
        end
        return { set = { line_count = #children }, children = children,
                 reasoning = #children .. " lines to price" }
      end,
      -- The base token (no parent) goes to the join; its children to pricing.
      routing = {
        branches = { { when = "parent_id == null", to = "joined" } },
        default = "lines",
      },
    },

    beta "price-line" {
      inbound = { "lines" },
      outbound = { "joined" },
      step = function(token)
        local qty, price = tonumber(token.qty), tonumber(token.unit_price)
        if not qty or not price then
          return { fail = "UNPRICEABLE", reasoning = "qty or unit_price missing" }
        end
        return { set = { line_total = qty * price }, reasoning = "qty x unit_price" }
      end,
    },

    omega "ship" {
      description = "Ships the order once every line is priced",
      inbound = { { "joined", guard = cerberus "all-lines-priced" { require_children = true } } },
      step = function()
        return { reasoning = "all lines priced; order released" }
      end,
    },

    epsilon "line-doctor" {
      inbound = { { "ate", guard = criteria "failed-only" "status == 'FAILED'" } },
      outbound = { "joined" },
    },

    tau "line-clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },

  actors = {
    actor "system" {
      type = "SYSTEM",
      roles = { "order-intake", "split-lines", "price-line", "ship", "line-clock" },
    },
    actor "order-desk" { type = "HUMAN", roles = { "line-doctor" } },
  },
}
