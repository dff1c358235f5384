//! The GPU part of `tessera probe`: each CUDA device's name, compute capability and memory, the
//! driver and NVRTC versions, or the reason there is none. Never panics on a machine without
//! the CUDA libraries (the engine checks their presence before any call).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    pub index: usize,
    pub name: String,
    /// "9.0"
    pub compute_capability: String,
    pub memory_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gpus {
    pub devices: Vec<GpuDevice>,
    /// Why there is no usable GPU ("the CUDA driver library (libcuda.so) was not found ...");
    /// null when there is one.
    pub none: Option<String>,
    pub driver_version: Option<String>,
    /// NVRTC's version, or why it cannot be used (kernels are compiled at run time with it).
    pub nvrtc: Option<String>,
}

/// Asks the CUDA driver (when present) what GPUs this machine has.
pub fn describe() -> Gpus {
    match tessera_engine::cuda::probe() {
        Err(reason) => Gpus {
            none: Some(reason),
            nvrtc: Some(match tessera_engine::cuda::nvrtc_status() {
                Ok(v) => v,
                Err(r) => format!("unusable: {r}"),
            }),
            ..Gpus::default()
        },
        Ok(p) => Gpus {
            none: p
                .devices
                .is_empty()
                .then(|| "the driver reports no CUDA-capable device".to_string()),
            devices: p
                .devices
                .iter()
                .map(|d| GpuDevice {
                    index: d.index,
                    name: d.name.clone(),
                    compute_capability: format!("{}.{}", d.cc.0, d.cc.1),
                    memory_bytes: d.total_mem,
                })
                .collect(),
            driver_version: Some(p.driver_version),
            nvrtc: Some(match p.nvrtc {
                Ok(v) => v,
                Err(r) => format!("unusable: {r}"),
            }),
        },
    }
}

/// Lines for the probe table: one per GPU, or "none: <reason>".
pub fn table_lines(g: &Gpus) -> Vec<(String, String)> {
    if g.devices.is_empty() {
        let mut v = vec![(
            "gpu".into(),
            format!("none: {}", g.none.as_deref().unwrap_or("no CUDA device")),
        )];
        if let Some(n) = &g.nvrtc {
            v.push(("nvrtc".into(), n.clone()));
        }
        return v;
    }
    let mut v: Vec<(String, String)> = g
        .devices
        .iter()
        .map(|d| {
            (
                format!("gpu {}", d.index),
                format!(
                    "{}, compute capability {}, {:.1} GiB, driver {}",
                    d.name,
                    d.compute_capability,
                    d.memory_bytes as f64 / (1u64 << 30) as f64,
                    g.driver_version.as_deref().unwrap_or("?")
                ),
            )
        })
        .collect();
    v.push((
        "nvrtc".into(),
        g.nvrtc.clone().unwrap_or_else(|| "?".into()),
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_devices_render() {
        let none = Gpus {
            none: Some("the CUDA driver library (libcuda.so) was not found".into()),
            ..Gpus::default()
        };
        let l = table_lines(&none);
        assert_eq!(l.len(), 1);
        assert_eq!(
            l[0].1,
            "none: the CUDA driver library (libcuda.so) was not found"
        );
        let one = Gpus {
            devices: vec![GpuDevice {
                index: 0,
                name: "NVIDIA H100 80GB HBM3".into(),
                compute_capability: "9.0".into(),
                memory_bytes: 80 << 30,
            }],
            none: None,
            driver_version: Some("13.0".into()),
            nvrtc: Some("13.0".into()),
        };
        let l = table_lines(&one);
        assert_eq!(l[0].0, "gpu 0");
        assert!(
            l[0].1.contains("compute capability 9.0")
                && l[0].1.contains("80.0 GiB")
                && l[0].1.contains("driver 13.0"),
            "{:?}",
            l
        );
        let json = serde_json::to_value(&none).unwrap();
        assert_eq!(json["devices"].as_array().unwrap().len(), 0);
        assert!(json["none"].as_str().unwrap().contains("libcuda"));
    }

    #[test]
    fn describe_never_panics() {
        // On a machine without a GPU this is "none: <reason>"; with one, a device list.
        let g = describe();
        if g.devices.is_empty() {
            assert!(!g.none.as_deref().unwrap_or("").is_empty());
        }
    }
}
