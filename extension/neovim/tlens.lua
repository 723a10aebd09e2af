-- tlens-lsp for Neovim 0.7+ (no plugins needed).
--
-- Install the server into the Python you do research with:  python -m pip install tlens-lsp
-- Then put this file on your runtimepath as lua/tlens.lua and add to init.lua:
--
--   require('tlens').setup({
--     python = vim.fn.expand('~/venvs/interp/bin/python'),   -- runs `python -m lsp_server serve`
--     settings = { diagnostics = { severity = { ['multi-token'] = 'hint' } } },
--   })
--
-- (or, without copying it: dofile('/path/to/tlens-lsp/extension/neovim/tlens.lua').setup({...}))
--
-- Hover (K), completion (<C-x><C-o>), diagnostics and code actions (vim.lsp.buf.code_action) work
-- through Neovim's built-in client. Commands: :TlensAttachKernel {connection-file}, :TlensStartKernel,
-- :TlensInterruptKernel, :TlensSweep [kind], :TlensKernelStatus. The kernel state is in
-- vim.g.tlens_kernel (for a statusline); a finished sweep prints where its PNG and JSON were saved.
local M = {}

local defaults = {
  python = 'python3',
  -- Same keys as the VS Code settings (without the `tlens.` prefix).
  settings = {
    inlayHints = { enabled = true },
    diagnostics = { severity = {} },
    sweep = { defaultKind = 'resid_pre' },
    kernel = { connectionFile = '', interpreter = '' },
    transformerLensVersion = '', -- e.g. '2.18.0' when your code targets another TL than the server's
  },
  root_markers = { 'pyproject.toml', 'setup.py', 'setup.cfg', '.git' },
}

local config = defaults

-- Neovim 0.10 renamed the client lookups and 0.11 made client methods colon calls; these work on 0.7+.
local function clients(filter)
  if vim.lsp.get_clients then return vim.lsp.get_clients(filter) end
  local all = filter and filter.bufnr and vim.lsp.buf_get_clients(filter.bufnr) or vim.lsp.get_active_clients()
  local out = {}
  for _, c in pairs(all) do
    if not (filter and filter.name) or c.name == filter.name then table.insert(out, c) end
  end
  return out
end

local function request(client, method, params, handler, bufnr)
  if vim.fn.has('nvim-0.11') == 1 then return client:request(method, params, handler, bufnr) end
  return client.request(method, params, handler, bufnr)
end
M.clients = clients

local function root_dir(bufnr)
  local file = vim.api.nvim_buf_get_name(bufnr)
  local dir = file ~= '' and vim.fn.fnamemodify(file, ':p:h') or vim.fn.getcwd()
  for _, marker in ipairs(config.root_markers) do
    local file = vim.fn.findfile(marker, dir .. ';')
    if file ~= '' then return vim.fn.fnamemodify(file, ':p:h') end
    local sub = vim.fn.finddir(marker, dir .. ';')
    if sub ~= '' then return vim.fn.fnamemodify(sub, ':p:h:h') end -- ':p' of a dir ends in '/'
  end
  return dir
end

local handlers = {
  ['tlens/kernelStatus'] = function(_, status)
    vim.g.tlens_kernel = status
    local p = status.progress
    local text = 'kernel ' .. status.state .. (p and string.format(' %d/%d', p.done, p.total) or '')
    vim.api.nvim_echo({ { 'tlens: ' .. text } }, false, {})
  end,
  ['tlens/sweepResult'] = function(_, r)
    local partial = r.partial and ' (partial)' or ''
    vim.notify(string.format('tlens: %s%s -> %s', r.title, partial, r.pngPath or '(no file)'))
  end,
}

--- The config for vim.lsp.start / vim.lsp.start_client.
function M.client_config(bufnr)
  local settings = vim.tbl_deep_extend('force', {}, config.settings, { interpreter = config.python })
  return {
    name = 'tlens',
    cmd = { config.python, '-m', 'lsp_server', 'serve' },
    root_dir = root_dir(bufnr or 0),
    init_options = { settings = settings },
    settings = { tlens = settings }, -- answers workspace/configuration (each folder's settings)
    handlers = handlers,
  }
end

--- Starts (or reuses) the server for a buffer and attaches it. Returns the client id.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local cfg = M.client_config(bufnr)
  if vim.lsp.start then -- Neovim 0.8+: reuses a client with the same name and root
    return vim.lsp.start(cfg, { bufnr = bufnr })
  end
  for _, client in ipairs(clients({ name = cfg.name })) do -- Neovim 0.7
    if client.config.root_dir == cfg.root_dir then
      vim.lsp.buf_attach_client(bufnr, client.id)
      return client.id
    end
  end
  local id = vim.lsp.start_client(cfg)
  if id then vim.lsp.buf_attach_client(bufnr, id) end
  return id
end

local function tlens_client()
  local found = clients({ bufnr = vim.api.nvim_get_current_buf(), name = 'tlens' })[1]
  if not found then vim.notify('tlens: no tlens server attached to this buffer', vim.log.levels.ERROR) end
  return found
end

--- Runs a server command (workspace/executeCommand) and reports errors.
function M.execute(command, args)
  local client = tlens_client()
  if not client then return end
  request(client, 'workspace/executeCommand', { command = command, arguments = args }, function(err, result)
    if err then
      vim.notify('tlens: ' .. command .. ' failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif command == 'tlens.kernelStatus' and result then
      vim.notify('tlens: kernel ' .. result.state .. (result.connectionFile and (' ' .. result.connectionFile) or ''))
    end
  end, 0)
end

function M.setup(opts)
  config = vim.tbl_deep_extend('force', defaults, opts or {})
  local group = vim.api.nvim_create_augroup('tlens', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = 'python',
    callback = function(ev) M.attach(ev.buf) end,
  })
  local cmd = vim.api.nvim_create_user_command
  cmd('TlensAttachKernel', function(a) M.execute('tlens.attachKernel', { { connectionFile = vim.fn.expand(a.args) } }) end,
    { nargs = 1, complete = 'file' })
  cmd('TlensStartKernel', function() M.execute('tlens.startKernel', { {} }) end, {})
  cmd('TlensInterruptKernel', function() M.execute('tlens.interruptKernel', {}) end, {})
  cmd('TlensKernelStatus', function() M.execute('tlens.kernelStatus', {}) end, {})
  cmd('TlensSweep', function(a)
    local args = { uri = vim.uri_from_bufnr(0), line = vim.api.nvim_win_get_cursor(0)[1] - 1 }
    if a.args ~= '' then args.kind = a.args end
    M.execute('tlens.runSweep', { args })
  end, { nargs = '?' })
end

return M
