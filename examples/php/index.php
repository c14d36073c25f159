<?php
// Counts requests in MemCachier through memtunnel.
//
// memtunnel rewrites MEMCACHIER_SERVERS to its local listeners before it
// starts the web server; Heroku's PHP-FPM passes the dyno's environment to
// its workers (clear_env = no). SASL runs inside the tunnel and needs the
// binary protocol.
$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
$m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);
$m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 2000);
foreach (explode(',', getenv('MEMCACHIER_SERVERS') ?: '127.0.0.1:11211') as $server) {
    [$host, $port] = explode(':', $server);
    $m->addServer($host, (int) $port);
}
if (getenv('MEMCACHIER_USERNAME')) {
    $m->setSaslAuthData(getenv('MEMCACHIER_USERNAME'), getenv('MEMCACHIER_PASSWORD'));
}

$hits = $m->increment('php:hits', 1, 1);
header('Content-Type: text/plain');
if ($hits === false) {
    http_response_code(500);
    echo 'cache error: ', $m->getResultMessage(), "\n";
} else {
    echo "hits=$hits\n";
}
