-- Headless Neovim probe for the tlens server, driven by tests/editors/test_neovim.py.
-- It loads the user-facing config (extension/neovim/tlens.lua), opens a file, lets the FileType
-- autocmd attach the server, then prints one line: PROBE_RESULT <json>
--   {attached, hover (markdown or null), diagnostics [{code, message, lnum, col}], error}
-- Env: TLENS_LUA, TLENS_PYTHON, PROBE_FILE, PROBE_HOVER_LINE / PROBE_HOVER_COL (0-based; optional),
--      PROBE_DIAGNOSTIC_CODE (wait until a diagnostic with this code arrives; optional), PROBE_TIMEOUT_MS.
-- Works on Neovim 0.7 (vim.lsp.start_client) and newer (vim.lsp.start), through tlens.lua.
local result = { attached = false, hover = vim.NIL, diagnostics = {}, error = vim.NIL }
local timeout = tonumber(vim.env.PROBE_TIMEOUT_MS or '30000')

local tlens

local function finish(code)
  io.stdout:write('PROBE_RESULT ' .. vim.fn.json_encode(result) .. '\n')
  if tlens then
    for _, client in ipairs(tlens.clients()) do vim.lsp.stop_client(client.id) end
    vim.wait(3000, function() return #tlens.clients() == 0 end, 20)
  end
  vim.cmd(code == 0 and 'qall!' or 'cquit ' .. code)
end

local ok, err = pcall(function()
  tlens = dofile(vim.env.TLENS_LUA)
  tlens.setup({ python = vim.env.TLENS_PYTHON })
  vim.cmd('filetype on')
  vim.cmd('edit ' .. vim.fn.fnameescape(vim.env.PROBE_FILE))
  local bufnr = vim.api.nvim_get_current_buf()

  result.attached = vim.wait(timeout, function()
    local c = tlens.clients({ bufnr = bufnr, name = 'tlens' })[1]
    return c ~= nil and c.initialized == true
  end, 20)
  if not result.attached then error('the tlens server did not attach and initialize within ' .. timeout .. ' ms') end

  if vim.env.PROBE_HOVER_LINE then
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(bufnr) },
      position = { line = tonumber(vim.env.PROBE_HOVER_LINE), character = tonumber(vim.env.PROBE_HOVER_COL) },
    }
    local responses = vim.lsp.buf_request_sync(bufnr, 'textDocument/hover', params, timeout)
    for _, r in pairs(responses or {}) do
      if r.err then error('hover failed: ' .. vim.inspect(r.err)) end
      if r.result and r.result.contents then
        local c = r.result.contents
        result.hover = c.value or (type(c) == 'string' and c) or vim.inspect(c)
      end
    end
  end

  local want = vim.env.PROBE_DIAGNOSTIC_CODE
  if want then
    vim.wait(timeout, function()
      for _, d in ipairs(vim.diagnostic.get(bufnr)) do
        if d.code == want then return true end
      end
      return false
    end, 50)
  end
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(result.diagnostics, { code = d.code or vim.NIL, message = d.message, lnum = d.lnum, col = d.col })
  end
end)
if not ok then result.error = tostring(err) end
finish(ok and 0 or 1)
