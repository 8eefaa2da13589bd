pub async fn demo(_p: u16, _k: bool) -> std::process::ExitCode { std::process::ExitCode::SUCCESS }
