//! `serve-grpc` (the standard gRPC health service, `tonic-health`) and
//! `grpc-check ADDR` (a Health/Check call, its answer printed as a
//! [`GrpcAnswer`]: status code, serving status and the response's
//! metadata, into which tonic merges the trailers). These two subcommands
//! alone run a small tokio runtime; everything else in the tool is
//! blocking std.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_e2e::tool::GrpcAnswer;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus;

use crate::Result;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Serves grpc.health.v1.Health with `service` (and the server itself,
/// `""`) SERVING.
pub fn serve_grpc(listen: &str, service: &str) -> Result<()> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("--listen wants IP:PORT, got {listen}"))?;
    runtime()?.block_on(async {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(service, ServingStatus::Serving)
            .await;
        eprintln!("listening on {addr} (grpc health, service {service:?})");
        tonic::transport::Server::builder()
            .add_service(health)
            .serve(addr)
            .await
            .map_err(|e| format!("grpc server: {e}"))
    })
}

/// One Health/Check call to `addr` (`HOST:PORT`, resolved as apps do).
pub fn grpc_check(addr: &str, service: &str, timeout: Duration) -> Result<()> {
    let answer = runtime()?.block_on(async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("{addr}: {e}"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let request = HealthCheckRequest {
            service: service.to_string(),
        };
        Ok::<_, String>(match HealthClient::new(channel).check(request).await {
            Ok(resp) => {
                let metadata = GrpcAnswer::metadata_of(resp.metadata());
                let serving = WireStatus::try_from(resp.into_inner().status)
                    .map(|s| s.as_str_name().to_string())
                    .ok();
                GrpcAnswer {
                    code: 0,
                    code_name: "Ok".into(),
                    message: String::new(),
                    serving,
                    metadata,
                }
            }
            Err(status) => GrpcAnswer {
                code: status.code() as i32,
                code_name: format!("{:?}", status.code()),
                message: status.message().to_string(),
                serving: None,
                metadata: GrpcAnswer::metadata_of(status.metadata()),
            },
        })
    })?;
    println!(
        "{}",
        serde_json::to_string(&answer).map_err(|e| e.to_string())?
    );
    Ok(())
}
