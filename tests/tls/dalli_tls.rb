# Dalli over TLS (ssl_context), driven by tests/tls/test_tls_clients.py.
# Env: MEMCLOUD_SERVER (host:port of the TLS listener), MEMCLOUD_USERNAME, MEMCLOUD_PASSWORD,
# MEMCLOUD_CA (the CA of the server's certificate). Prints "ok <check>" per check.
require 'dalli'
require 'logger'
require 'openssl'

Dalli.logger = Logger.new(nil)
SERVER = ENV.fetch('MEMCLOUD_SERVER')

def context(ca_file)
  ctx = OpenSSL::SSL::SSLContext.new
  ctx.set_params(verify_mode: OpenSSL::SSL::VERIFY_PEER)
  if ca_file
    ctx.cert_store = OpenSSL::X509::Store.new.tap { |store| store.add_file(ca_file) }
  else
    ctx.cert_store = OpenSSL::X509::Store.new # trusts nothing
  end
  ctx
end

def client(ca_file)
  Dalli::Client.new(SERVER, username: ENV.fetch('MEMCLOUD_USERNAME'),
                            password: ENV.fetch('MEMCLOUD_PASSWORD'),
                            ssl_context: context(ca_file), socket_timeout: 5,
                            socket_max_failures: 1, down_retry_delay: 0)
end

def check(condition, what)
  raise "check failed: #{what}" unless condition
end

c = client(ENV.fetch('MEMCLOUD_CA'))
check(c.set('dl:tls', 'dalli over tls'), 'set')
check(c.get('dl:tls') == 'dalli over tls', 'get')
check(c.delete('dl:tls'), 'delete')
puts 'ok tls'

# A client that does not trust the server's CA never gets to send its credentials.
begin
  client(nil).get('dl:tls')
  raise 'check failed: an untrusted certificate was accepted'
rescue Dalli::RingError, Dalli::NetworkError, OpenSSL::SSL::SSLError => e
  raise unless e.is_a?(Dalli::DalliError) || e.message.include?("certificate verify failed")
  puts 'ok verify'
end
