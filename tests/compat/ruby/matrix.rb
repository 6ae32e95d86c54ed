# Dalli against memcloud, driven by tests/compat/test_dalli.py.
# Env: MEMCLOUD_SERVER, MEMCLOUD_USERNAME, MEMCLOUD_PASSWORD, MEMCLOUD_RO_USERNAME,
# MEMCLOUD_RO_PASSWORD. Prints "ok <check>" per check; exits 1 on the first failure.
require 'dalli'
require 'logger'

Dalli.logger = Logger.new(nil)
SERVER = ENV.fetch('MEMCLOUD_SERVER')

def client(username, password)
  Dalli::Client.new(SERVER, username: username, password: password, socket_timeout: 2,
                            socket_max_failures: 1, down_retry_delay: 0)
end

def check(condition, what)
  raise "check failed: #{what}" unless condition
end

def basic
  c = client(ENV.fetch('MEMCLOUD_USERNAME'), ENV.fetch('MEMCLOUD_PASSWORD'))
  check(c.set('dl:key', 'hello'), 'set')
  check(c.get('dl:key') == 'hello', 'get')
  check(c.delete('dl:key'), 'delete')
  check(c.get('dl:key').nil?, 'get after delete')
  check(c.set('dl:n', '5', 0, raw: true), 'set raw')
  check(c.incr('dl:n', 3) == 8, 'incr')
  check(c.decr('dl:n', 10) == 0, 'decr stops at 0')
  check(c.incr('dl:fresh', 1, 0, 41) == 41, 'incr creates with the initial value')
  value, cas = c.get_cas('dl:n')
  check(value == '0' && cas.to_i > 0, 'get_cas')
  check(c.set_cas('dl:n', '7', cas, 0, raw: true), 'set_cas')
  check(!c.set_cas('dl:n', '9', cas, 0, raw: true), 'stale set_cas refused')
  check(c.cas('dl:n', 0, raw: true) { |v| (v.to_i + 1).to_s }, 'cas block')
  check(c.get('dl:n', raw: true) == '8', 'value after cas')
  check(c.touch('dl:n', 100), 'touch')
  check(!c.touch('dl:missing', 100), 'touch missing')
  check(c.flush, 'flush')
  check(c.get('dl:n').nil?, 'flushed')
  stats = c.stats.values.first
  check(stats['auth_cmds'].to_i >= 1, 'stats')
  c.close
  puts 'ok basic'
end

def wrong_password
  c = client(ENV.fetch('MEMCLOUD_USERNAME'), 'not-the-password')
  begin
    c.set('dl:x', '1')
    raise 'a wrong password was accepted'
  rescue Dalli::DalliError => e
    check(e.message.include?('authenticating'), "refusal: #{e.message}")
  end
  c.close
  puts 'ok wrong-password'
end

def read_only
  writer = client(ENV.fetch('MEMCLOUD_USERNAME'), ENV.fetch('MEMCLOUD_PASSWORD'))
  reader = client(ENV.fetch('MEMCLOUD_RO_USERNAME'), ENV.fetch('MEMCLOUD_RO_PASSWORD'))
  check(writer.set('dl:ro', 'kept'), 'writer set')
  check(reader.get('dl:ro') == 'kept', 'reader get')
  # "value not set", as MemCachier describes Dalli without the write capability
  check(!reader.set('dl:ro', 'changed'), 'read-only set refused')
  check(!reader.add('dl:ro2', 'new'), 'read-only add refused')
  check(writer.get('dl:ro') == 'kept', 'value unchanged')
  writer.close
  reader.close
  puts 'ok read-only'
end

basic
wrong_password
read_only
