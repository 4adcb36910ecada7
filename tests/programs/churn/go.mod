module churn

go 1.27
