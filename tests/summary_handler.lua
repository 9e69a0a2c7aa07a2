-- tests/summary_handler.lua — busted output handler: busted's plain
-- terminal output, then one last line "N passed, N failed" that
-- tests/run.sh (and CI) reads. Errors count as failures.
return function(options)
  local busted = require("busted")
  local handler = require("busted.outputHandlers.plainTerminal")(options)
  busted.subscribe({ "suite", "end" }, function()
    io.write(string.format("\n%d passed, %d failed\n", handler.successesCount,
      handler.failuresCount + handler.errorsCount))
    io.flush()
    return nil, true
  end)
  return handler
end
