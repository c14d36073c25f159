# A tiny web app that counts requests in MemCachier through memtunnel.
#
# memtunnel rewrites MEMCACHIER_SERVERS to its local listeners before it
# starts the app; Dalli logs in with SASL (binary protocol) inside the tunnel.
# In Rails the same goes into config/environments/production.rb:
#
#   config.cache_store = :mem_cache_store, ENV["MEMCACHIER_SERVERS"].split(","),
#     { username: ENV["MEMCACHIER_USERNAME"], password: ENV["MEMCACHIER_PASSWORD"],
#       failover: true, socket_timeout: 1.5, socket_failure_delay: 0.2 }
require "dalli"
require "webrick"

cache = Dalli::Client.new(
  ENV.fetch("MEMCACHIER_SERVERS", "127.0.0.1:11211").split(","),
  username: ENV["MEMCACHIER_USERNAME"],
  password: ENV["MEMCACHIER_PASSWORD"],
  failover: true, socket_timeout: 1.5, socket_failure_delay: 0.2
)

server = WEBrick::HTTPServer.new(
  Port: Integer(ENV.fetch("PORT", "5000")),
  AccessLog: [],
  Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN)
)
server.mount_proc("/") do |_req, res|
  res.content_type = "text/plain"
  res.body = "hits=#{cache.incr("ruby:hits", 1, nil, 1)}\n"
end
trap("TERM") { server.shutdown }
trap("INT") { server.shutdown }
server.start
