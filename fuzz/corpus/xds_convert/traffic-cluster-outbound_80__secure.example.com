
outbound|80||secure.example.com"
0R$
"ÿÿÿÿÿÿÿÿ"ÿÿÿÿ*ÿÿÿÿ0Â†
envoy.transport_sockets.tlsæ
Ptype.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext‘
{B

tests/golden/tls/client.pem!
tests/golden/tls/client-key.pem5

tests/golden/tls/ca.pemz
secure.example.comsecure.example.comÊ`
^
istioU
S
configIG/apis/networking.istio.io/v1/namespaces/default/destination-rule/secureŠF
outbound|80||secure.example.com#!


secure.example.com»"